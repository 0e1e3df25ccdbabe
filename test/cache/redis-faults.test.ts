import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { FakeOpenAI } from '../helpers/fake-openai.js';
import type { TestGateway } from '../helpers/gateway.js';
import type { TestRedis } from '../helpers/redis.js';
import { startCacheRig, stopCacheRig, storedEntry, chat, metricSum, post, waitFor } from './fixtures.js';

describe('response cache – Redis faults', () => {
  let upstream: FakeOpenAI;
  let redis: TestRedis;
  let gw: TestGateway;
  before(async () => {
    ({ upstream, redis, gw } = await startCacheRig());
    await waitFor('redis ready', async () => (await fetch(`${gw.url}/readyz`)).status === 200);
  });
  after(async () => {
    await stopCacheRig({ upstream, redis, gw });
  });

  const stored = <T>(fn: () => Promise<T>) => storedEntry(gw, fn);

  it('redis faults – killed mid-test: requests still succeed uncached, counted and logged once; after a restart the cache works again', async () => {
    await stored(() => post(gw, '/chat/completions', chat('before the crash')));
    assert.equal((await post(gw, '/chat/completions', chat('before the crash'))).headers.get('x-gateway-cache'), 'hit');

    await redis.kill();
    await waitFor('the gateway to notice', async () => (await fetch(`${gw.url}/readyz`)).status === 503);
    const calls = upstream.calls.length;
    const down = await Promise.all([
      ...Array.from({ length: 10 }, () => post(gw, '/chat/completions', chat('before the crash'))),
      post(gw, '/chat/completions', chat('during the outage', { stream: true })),
      post(gw, '/embeddings', { model: 'embed-fake', input: ['a', 'b'] }),
    ]);
    for (const res of down) {
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('x-gateway-cache'), 'bypass');
    }
    assert.equal(upstream.calls.length, calls + 12);
    assert.ok((await metricSum(gw, 'lanegate_cache_store_errors_total')) >= 12);
    const records = await gw.auditRecords();
    assert.ok(records.filter((r) => (r.cache as { reason?: string } | null)?.reason === 'store_unavailable').length >= 12);
    // One log line for the outage, not one per request.
    assert.equal(gw.logs().split('\n').filter((l) => l.includes('cache store unavailable')).length, 1);

    await redis.restart();
    await waitFor('the gateway to reconnect', async () => (await fetch(`${gw.url}/readyz`)).status === 200);
    // The restarted server is empty: a miss, stored again, then a hit.
    const miss = await stored(() => post(gw, '/chat/completions', chat('before the crash')));
    assert.equal(miss.headers.get('x-gateway-cache'), 'miss');
    assert.equal((await post(gw, '/chat/completions', chat('before the crash'))).headers.get('x-gateway-cache'), 'hit');
    assert.equal(upstream.calls.length, calls + 13);
  });

  it('redis faults – admin purge reports an unreachable store instead of pretending', async () => {
    await redis.kill();
    try {
      await waitFor('the gateway to notice', async () => (await fetch(`${gw.url}/readyz`)).status === 503);
      const { ADMIN_KEY } = await import('../helpers/gateway.js');
      const res = await fetch(`${gw.url}/admin/cache`, { method: 'DELETE', headers: { authorization: `Bearer ${ADMIN_KEY}` } });
      assert.equal(res.status, 503);
      assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'service_unavailable');
      assert.equal((await post(gw, '/chat/completions', chat('still fine'))).status, 200);
    } finally {
      await redis.restart();
    }
  });
});
