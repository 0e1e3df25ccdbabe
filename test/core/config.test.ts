import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { ConfigError, parseGatewayConfig } from '../../src/config/load.js';

const run = promisify(execFile);
const root = path.resolve(import.meta.dirname, '../..');

describe('config', () => {
  it('config – every problem is reported at once, with file and path', () => {
    const yaml = `
server: { port: 99999 }
keys:
  - { id: a, sha256: nothex, app: x, team: y }
providers:
  p1: { type: openai, base_url: not-a-url }
models:
  m1: { deployments: [] }
  m2: { deployments: [{ provider: p1, model: "../../admin" }] }
unknown_section: true
`;
    assert.throws(
      () => parseGatewayConfig(yaml, 'gw.yaml', {}),
      (err: unknown) => {
        assert.ok(err instanceof ConfigError);
        const paths = err.problems.map((p) => p.path);
        for (const expected of ['server.port', 'keys[0].sha256', 'providers.p1.base_url', 'models.m1.deployments', 'models.m2.deployments[0].model']) {
          assert.ok(paths.includes(expected), `reports ${expected}: ${err.message}`);
        }
        assert.ok(err.problems.every((p) => p.file === 'gw.yaml'));
        assert.match(err.message, /unknown_section/);
        return true;
      },
    );
  });

  it('config – cross references are checked after the shape', () => {
    const yaml = `
auth: { mode: none }
providers: { p1: { type: mock } }
models: { m1: { deployments: [{ provider: nope, model: x }] } }
`;
    assert.throws(() => parseGatewayConfig(yaml, 'gw.yaml', {}), /models\.m1\.deployments\[0\]\.provider: unknown provider "nope"/);
  });

  it('config – an admission limit for a deployment no model has is refused, naming the deployments there are', () => {
    const yaml = (id: string) => `
auth: { mode: none }
providers: { p1: { type: mock } }
models: { m1: { deployments: [{ provider: p1, model: x }] } }
admission: { deployments: { "${id}": { max_inflight: 4 } } }
`;
    assert.equal(parseGatewayConfig(yaml('p1/x'), 'gw.yaml', {}).admission.deployments['p1/x']!.max_inflight, 4);
    assert.throws(() => parseGatewayConfig(yaml('p1/X'), 'gw.yaml', {}), /admission\.deployments\.p1\/X: no model has the deployment "p1\/X" \(deployments are <provider>\/<model>: p1\/x\)/);
  });

  it('config – ${ENV} and ${ENV:-default} are interpolated in values only', () => {
    const yaml = `
auth: { mode: none }
providers:
  p1: { type: openai, base_url: "\${BASE:-http://localhost:1/v1}", api_key: "\${KEY}" }
models: { m1: { deployments: [{ provider: p1, model: x }] } }
`;
    const config = parseGatewayConfig(yaml, 'gw.yaml', { KEY: 'k: {injected: true}' });
    const p1 = config.providers.p1!;
    assert.equal(p1.type, 'openai');
    assert.equal(p1.type === 'openai' && p1.api_key, 'k: {injected: true}');
    assert.equal(p1.type === 'openai' && p1.base_url, 'http://localhost:1/v1');
    assert.throws(() => parseGatewayConfig(yaml, 'gw.yaml', {}), /environment variable KEY is not set/);
  });

  it('cli – check-config accepts the shipped config and rejects a broken one', async () => {
    const ok = await run('node', ['bin/lanegate.mjs', 'check-config'], { cwd: root, env: { ...process.env, OPENAI_API_KEY: '', ANTHROPIC_API_KEY: '' } });
    assert.match(ok.stdout, /OK/);
    const dir = await mkdtemp(path.join(tmpdir(), 'lanegate-cfg-'));
    try {
      const bad = path.join(dir, 'bad.yaml');
      await writeFile(bad, (await readFile(path.join(root, 'config/gateway.yaml'), 'utf8')).replace('port: 8787', 'port: "eighty"'));
      await assert.rejects(run('node', ['bin/lanegate.mjs', 'check-config', '--config', bad], { cwd: root }), (err: { code: number; stderr: string }) => {
        assert.equal(err.code, 1);
        assert.match(err.stderr, /bad\.yaml: server\.port/);
        return true;
      });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('cli – hash-key prints the sha256 used in config', async () => {
    const { stdout } = await run('node', ['bin/lanegate.mjs', 'hash-key', 'lg-dev-key-change-me'], { cwd: root });
    assert.equal(stdout.trim(), '6fd81de146107a0545ac4c9dd59d4291bee8276ac3d000dee7a0dbf8ea62e25c');
  });
});
