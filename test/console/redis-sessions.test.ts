// With Redis configured, console sessions live there: two gateway processes
// (replicas behind one load balancer) on one redis-server each accept a
// session the other created, and signing out on one ends it on both.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { hashKey } from '../../src/auth/keys.js';
import { defaultTestConfig } from '../helpers/gateway.js';
import { spawnGateway, type GatewayProcess } from '../helpers/gateway-process.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';

const KEY = 'sk-person-alice-approver-000002';

describe('console sessions – shared through Redis', () => {
  let redis: TestRedis;
  const replicas: Array<{ dir: string; gw: GatewayProcess }> = [];

  before(async () => {
    redis = await startRedis();
    for (let i = 0; i < 2; i++) {
      const dir = await mkdtemp(path.join(tmpdir(), 'lanegate-console-replica-'));
      const configFile = path.join(dir, 'gateway.yaml');
      const yaml = `${defaultTestConfig({})}
people:
  - { name: Alice, role: approver, sha256: ${hashKey(KEY)} }
redis:
  url: ${redis.url}
  key_prefix: console-sessions-test
`;
      await writeFile(configFile, yaml.replaceAll('{{dir}}', dir));
      replicas.push({ dir, gw: await spawnGateway(configFile) });
    }
  });
  after(async () => {
    for (const r of replicas) {
      await r.gw.stop();
      await rm(r.dir, { recursive: true, force: true });
    }
    await redis?.stop();
  });

  const approvals = async (gw: GatewayProcess, cookie: string) => {
    const res = await fetch(`${gw.url}/console/approvals`, { redirect: 'manual', headers: { cookie } });
    return { status: res.status, location: res.headers.get('location'), html: await res.text() };
  };

  it('sessions – one signed in on replica A is signed in on B; signing out on B ends it on A', async () => {
    const [a, b] = replicas.map((r) => r.gw) as [GatewayProcess, GatewayProcess];
    const signIn = await fetch(`${a.url}/console/sign-in`, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: `key=${KEY}`,
    });
    assert.equal(signIn.status, 303);
    const cookie = /lanegate_console=[^;]+/.exec(signIn.headers.get('set-cookie') ?? '')?.[0];
    assert.ok(cookie, 'a session cookie');

    for (const gw of [a, b]) {
      const page = await approvals(gw, cookie);
      assert.equal(page.status, 200, `signed in on ${gw === a ? 'A' : 'B'}`);
      assert.match(page.html, /Alice/);
    }
    // The CSRF token is the session's, so B's page carries the one A issued.
    const token = /name="_csrf" value="([^"]+)"/.exec((await approvals(b, cookie)).html)?.[1];
    assert.ok(token, 'a CSRF token in the page');
    const signOut = await fetch(`${b.url}/console/sign-out`, {
      method: 'POST',
      redirect: 'manual',
      headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' },
      body: `_csrf=${encodeURIComponent(token)}`,
    });
    assert.equal(signOut.status, 303);
    assert.equal(signOut.headers.get('location'), '/console/sign-in');

    for (const gw of [a, b]) {
      const page = await approvals(gw, cookie);
      assert.equal(page.status, 303, `signed out on ${gw === a ? 'A' : 'B'}`);
      assert.equal(page.location, '/console/sign-in');
    }
  });
});
