// Sign-in limits and the session cookie's Secure flag believe X-Forwarded-For
// and X-Forwarded-Proto only from a proxy the operator trusts
// (server.trusted_proxies); from anyone else the headers change nothing.
// Every request here comes from 127.0.0.1, as a proxy on this host would.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { hashKey } from '../../src/auth/keys.js';
import { gatewayConfigSchema } from '../../src/config/schema.js';
import { defaultTestConfig, startTestGateway, type TestGateway } from '../helpers/gateway.js';

const KEY = 'sk-person-ada-admin-000000000001';
const PER_MINUTE = 3;
const people = `
people:
  - { name: Ada, role: admin, sha256: ${hashKey(KEY)} }
console: { sign_in_per_minute: ${PER_MINUTE} }
`;

/** The default test config with server.trusted_proxies set. */
function withProxies(list: string[]): string {
  const yaml = defaultTestConfig({}).replace('server:\n', `server:\n  trusted_proxies: [${list.map((a) => JSON.stringify(a)).join(', ')}]\n`);
  assert.match(yaml, /trusted_proxies/);
  return yaml + people;
}

async function signIn(gw: TestGateway, key: string, headers: Record<string, string> = {}): Promise<Response> {
  const res = await fetch(`${gw.url}/console/sign-in`, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    body: `key=${key}`,
  });
  await res.arrayBuffer();
  return res;
}

/** Wrong keys until refused: how many were answered 401 first. */
async function exhaust(gw: TestGateway, headers: Record<string, string>): Promise<number> {
  for (let i = 0; i <= PER_MINUTE; i++) {
    const res = await signIn(gw, `sk-guess-${i}-000000000000000000`, headers);
    if (res.status === 429) return i;
    assert.equal(res.status, 401);
  }
  throw new Error('never limited');
}

describe('console sign-in – no trusted proxies', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startTestGateway({ extra: people });
  });
  after(async () => {
    await gw?.close();
  });

  it('client address – a spoofed X-Forwarded-For from an untrusted peer is ignored: the socket is the client', async () => {
    assert.equal(await exhaust(gw, { 'x-forwarded-for': '203.0.113.1' }), PER_MINUTE);
    // Another claimed address, same socket: still limited, the right key too.
    assert.equal((await signIn(gw, 'sk-guess-x-000000000000000000', { 'x-forwarded-for': '203.0.113.2' })).status, 429);
    assert.equal((await signIn(gw, KEY, { 'x-forwarded-for': '198.51.100.7' })).status, 429);
  });
});

describe('console cookie – X-Forwarded-Proto from an untrusted peer', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startTestGateway({ yaml: withProxies(['10.0.0.0/8']) });
  });
  after(async () => {
    await gw?.close();
  });

  it('cookie – not Secure on plain HTTP, whatever an untrusted peer claims; its X-Forwarded-For is ignored too', async () => {
    const res = await signIn(gw, KEY, { 'x-forwarded-proto': 'https', 'x-forwarded-for': '10.1.2.3' });
    assert.equal(res.status, 303);
    const cookie = res.headers.get('set-cookie') ?? '';
    assert.match(cookie, /lanegate_console=/);
    assert.match(cookie, /HttpOnly/);
    assert.match(cookie, /SameSite=Strict/);
    assert.doesNotMatch(cookie, /Secure/);
    // 127.0.0.1 is not in 10.0.0.0/8: the forwarded addresses all count against the socket.
    assert.equal(await exhaust(gw, { 'x-forwarded-for': '10.9.9.9' }), PER_MINUTE - 1);
    assert.equal((await signIn(gw, KEY, { 'x-forwarded-for': '192.0.2.44' })).status, 429);
  });
});

describe('console sign-in – behind a trusted proxy', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startTestGateway({ yaml: withProxies(['127.0.0.1', '10.0.0.0/8']) });
  });
  after(async () => {
    await gw?.close();
  });

  it('client address – the right-most untrusted X-Forwarded-For hop; what the client wrote left of it changes nothing', async () => {
    // The client 192.0.2.10 came through a second trusted proxy (10.0.0.5).
    assert.equal(await exhaust(gw, { 'x-forwarded-for': '192.0.2.10, 10.0.0.5' }), PER_MINUTE);
    // Prepending a made-up address does not make a new client.
    assert.equal((await signIn(gw, KEY, { 'x-forwarded-for': '198.51.100.99, 192.0.2.10, 10.0.0.5' })).status, 429);
    assert.equal((await signIn(gw, KEY, { 'x-forwarded-for': '192.0.2.10' })).status, 429);
    // Another client behind the same proxy has its own allowance.
    assert.equal((await signIn(gw, 'sk-guess-y-000000000000000000', { 'x-forwarded-for': '192.0.2.11, 10.0.0.5' })).status, 401);
    const res = await signIn(gw, KEY, { 'x-forwarded-for': '192.0.2.12' });
    assert.equal(res.status, 303);
  });

  it('cookie – Secure when a trusted proxy took the request over https', async () => {
    const secure = await signIn(gw, KEY, { 'x-forwarded-for': '192.0.2.20', 'x-forwarded-proto': 'https' });
    assert.equal(secure.status, 303);
    assert.match(secure.headers.get('set-cookie') ?? '', /; Secure/);
    const plain = await signIn(gw, KEY, { 'x-forwarded-for': '192.0.2.21', 'x-forwarded-proto': 'http' });
    assert.equal(plain.status, 303);
    assert.doesNotMatch(plain.headers.get('set-cookie') ?? '', /Secure/);
  });

  it('config – trusted_proxies takes addresses and CIDR ranges only', () => {
    const base = { providers: {}, models: {} };
    assert.ok(gatewayConfigSchema.safeParse({ ...base, server: { trusted_proxies: ['10.0.0.0/8', '::1', 'fd00::/8', '127.0.0.1'] } }).success);
    for (const bad of ['localhost', '10.0.0.0/33', '10.0.0.1/8/1', '']) {
      const parsed = gatewayConfigSchema.safeParse({ ...base, server: { trusted_proxies: [bad] } });
      assert.equal(parsed.success, false, bad);
    }
  });
});

describe('console sign-in – X-Forwarded-For hops that are not bare addresses', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startTestGateway({ yaml: withProxies(['127.0.0.1']) });
  });
  after(async () => {
    await gw?.close();
  });

  it('client address – a hop with a port is its host: same client on a new port, others keep their allowance', async () => {
    assert.equal(await exhaust(gw, { 'x-forwarded-for': '203.0.113.9:51234' }), PER_MINUTE);
    // A new connection from the same client (a new source port) is still that client.
    assert.equal((await signIn(gw, KEY, { 'x-forwarded-for': '203.0.113.9:40000' })).status, 429);
    assert.equal((await signIn(gw, KEY, { 'x-forwarded-for': '203.0.113.9' })).status, 429);
    // Everyone else behind the proxy signs in.
    assert.equal((await signIn(gw, KEY, { 'x-forwarded-for': '203.0.113.10:51234' })).status, 303);
  });

  it('client address – a bracketed IPv6 hop with a port is its address', async () => {
    assert.equal(await exhaust(gw, { 'x-forwarded-for': '[2001:db8::1]:443' }), PER_MINUTE);
    assert.equal((await signIn(gw, KEY, { 'x-forwarded-for': '2001:db8::1' })).status, 429);
    assert.equal((await signIn(gw, KEY, { 'x-forwarded-for': '[2001:db8::2]' })).status, 303);
  });

  it('client address – a hop that is no address (`unknown`) is counted on its own, not as the proxy', async () => {
    assert.equal(await exhaust(gw, { 'x-forwarded-for': 'unknown' }), PER_MINUTE);
    assert.equal((await signIn(gw, KEY, { 'x-forwarded-for': '198.51.100.1, unknown' })).status, 429);
    // Clients the proxy named are not locked out by the ones it could not.
    assert.equal((await signIn(gw, KEY, { 'x-forwarded-for': '198.51.100.2' })).status, 303);
    assert.equal((await signIn(gw, KEY)).status, 303);
  });
});
