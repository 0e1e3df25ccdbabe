import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createMemoryCacheStore } from '../../src/cache/memory-store.js';
import type { EntryKey } from '../../src/cache/store.js';
import { startFakeOpenAI } from '../helpers/fake-openai.js';
import { startTestGateway } from '../helpers/gateway.js';
import { CACHE_POLICIES, cacheTestConfig, chat, metricSum, post, waitFor } from './fixtures.js';

const key = (hash: string, scope = 'shared', model = 'fast'): EntryKey => ({ kind: 'chat', scope, model, hash });

describe('memory cache store', () => {
  it('memory store – least recently used entries go first once the byte cap is reached', async () => {
    const store = createMemoryCacheStore({ maxBytes: 2_000 });
    const value = 'v'.repeat(400); // ~600 bytes with overhead: three fit
    for (const h of ['a', 'b', 'c']) assert.equal(await store.set(key(h), value, 60_000), true);
    assert.equal(await store.get(key('a')), value); // a is now the most recently used
    await store.set(key('d'), value, 60_000);
    assert.equal(await store.get(key('b')), undefined);
    assert.deepEqual(await store.getMany([key('a'), key('c'), key('d')]), [value, value, value]);
    assert.ok(store.stats()!.bytes <= 2_000);
    // Bigger than the whole cap: refused, nothing evicted for it.
    assert.equal(await store.set(key('huge'), 'x'.repeat(5_000), 60_000), false);
    assert.equal(store.stats()!.entries, 3);
  });

  it('memory store – entries expire with their TTL, and purge by scope and model', async () => {
    let now = 1_000;
    const store = createMemoryCacheStore({ maxBytes: 1_000_000, now: () => now });
    await store.set(key('a', 'team:x', 'fast'), '1', 1_000);
    await store.set(key('b', 'team:y', 'fast'), '2', 60_000);
    await store.set(key('c', 'team:x', 'smart'), '3', 60_000);
    now += 1_000;
    assert.equal(await store.get(key('a', 'team:x', 'fast')), undefined);
    await store.set(key('a', 'team:x', 'fast'), '1', 60_000);
    assert.equal(await store.purge({ scope: 'team:x', model: 'fast' }), 1);
    assert.equal(await store.purge({ model: 'smart' }), 1);
    assert.equal(await store.get(key('b', 'team:y', 'fast')), '2');
    assert.equal(await store.purge({}), 1);
    assert.deepEqual(store.stats(), { entries: 0, bytes: 0 });
  });

  it('memory store – without redis.url the gateway caches in memory', async () => {
    const upstream = await startFakeOpenAI();
    const gw = await startTestGateway({ yaml: cacheTestConfig({ openaiUrl: upstream.url }), files: { 'policies/lanes.yaml': CACHE_POLICIES } });
    try {
      await post(gw, '/chat/completions', chat('in memory'));
      await waitFor('the entry to be stored', async () => (await metricSum(gw, 'lanegate_cache_stored_bytes_total')) > 0);
      const hit = await post(gw, '/chat/completions', chat('in memory'));
      assert.equal(hit.headers.get('x-gateway-cache'), 'hit');
      assert.equal(upstream.calls.length, 1);
      assert.ok((await metricSum(gw, 'lanegate_cache_memory_bytes')) > 0);
      const metrics = await (await fetch(`${gw.url}/metrics`)).text();
      assert.match(metrics, /lanegate_cache_requests_total\{endpoint="chat",route="gpt-fake",lane="shared",result="hit"\} 1/);
    } finally {
      await gw.close();
      await upstream.close();
    }
  });
});
