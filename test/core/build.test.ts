// `npm run build` (scripts/build.mjs) gives a gateway that runs as the image
// runs it: the compiled CLI, with the files served as they are (the
// console's script and stylesheet) beside the code that reads them. A build
// that left them out started nowhere: the console reads them at start.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { defaultTestConfig } from '../helpers/gateway.js';
import { spawnGateway, type GatewayProcess } from '../helpers/gateway-process.js';

const root = path.resolve(import.meta.dirname, '../..');

describe('build', () => {
  // Inside the checkout, so the compiled code finds node_modules as dist/ does.
  const out = path.join(root, `.build-test-${process.pid}`);
  const dir = mkdtempSync(path.join(tmpdir(), 'lanegate-build-'));
  let gw: GatewayProcess | undefined;
  after(async () => {
    await gw?.stop();
    rmSync(out, { recursive: true, force: true });
    rmSync(dir, { recursive: true, force: true });
  });

  it('build – the compiled gateway starts and serves the console\'s static files as they are in src/', async () => {
    execFileSync(process.execPath, ['scripts/build.mjs', out], { cwd: root, stdio: 'pipe' });
    const configFile = path.join(dir, 'gateway.yaml');
    writeFileSync(configFile, defaultTestConfig({}).replaceAll('{{dir}}', dir));
    const g = await spawnGateway(configFile, { entry: path.join(out, 'cli.js') });
    gw = g;
    assert.equal((await fetch(`${g.url}/healthz`)).status, 200);
    for (const name of ['console.js', 'console.css']) {
      const res: Response = await fetch(`${g.url}/console/static/${name}`);
      assert.equal(res.status, 200, name);
      assert.equal(await res.text(), readFileSync(path.join(root, 'src/console/static', name), 'utf8'), name);
    }
  });
});
