// What ships: the Dockerfile and `npm start` run the gateway the same way, and
// the bench measures it that way.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { ROOT, shippedRuntime } from '../../bench/setup.js';

describe('packaging', () => {
  it('npm start passes the Node flags the Dockerfile runs with', () => {
    const pkg = JSON.parse(readFileSync(`${ROOT}/package.json`, 'utf8')) as { scripts: Record<string, string> };
    const { flags } = shippedRuntime();
    assert.ok(flags.length > 0, 'the Dockerfile CMD sets Node flags');
    assert.equal(pkg.scripts.start, `node ${flags.join(' ')} bin/lanegate.mjs serve`);
  });

  it('this Node accepts the shipped V8 and WebAssembly flags (CI runs this on Node 20 and on the image\'s Node 24)', () => {
    const { flags } = shippedRuntime();
    // An unknown V8 flag only warns; a renamed one would silently stop tuning, so warnings fail too.
    const out = execFileSync(process.execPath, [...flags, '-e', 'process.stdout.write(process.version)'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    assert.equal(out, process.version);
    const err = spawnSync(process.execPath, [...flags, '-e', '0'], { encoding: 'utf8' }).stderr;
    assert.equal(err, '', `flags warn on ${process.version}: ${err}`);
  });

  it('the runtime image is non-root, health-checked, and tunes malloc as the bench assumes', () => {
    const dockerfile = readFileSync(`${ROOT}/Dockerfile`, 'utf8');
    assert.match(dockerfile, /^USER node$/m);
    assert.match(dockerfile, /^HEALTHCHECK .*\n?.*\/healthz/m);
    assert.equal(shippedRuntime().env.MALLOC_ARENA_MAX, '2');
    assert.equal(shippedRuntime().env.PORT, undefined, 'the bench sets its own port');
  });
});
