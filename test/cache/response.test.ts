import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import type { FakeOpenAI } from '../helpers/fake-openai.js';
import { ADMIN_KEY, APP_KEY, OTHER_KEY, startTestGateway, type TestGateway } from '../helpers/gateway.js';
import type { TestRedis } from '../helpers/redis.js';
import { CACHE_POLICIES, cacheTestConfig, startCacheRig, stopCacheRig, storedEntry, chat, GAMMA_KEY, metricSum, post, waitFor } from './fixtures.js';

describe('response cache (Redis)', () => {
  let upstream: FakeOpenAI;
  let redis: TestRedis;
  let gw: TestGateway;
  let raw: Redis;
  /** The cache's own keys (the approvals store shares the prefix). */
  const cacheKeys = (pattern = '*') => raw.keys(`cache-test:v1:cache:${pattern}`);
  before(async () => {
    ({ upstream, redis, gw } = await startCacheRig());
    raw = new Redis(redis.url);
  });
  after(async () => {
    raw.disconnect();
    await stopCacheRig({ upstream, redis, gw });
  });

  const stored = <T>(fn: () => Promise<T>) => storedEntry(gw, fn);

  it('response cache – a miss is stored, the same request then hits without calling upstream', async () => {
    const calls = upstream.calls.length;
    const first = await stored(() => post(gw, '/chat/completions', chat('hit me')));
    assert.equal(first.status, 200);
    assert.equal(first.headers.get('x-gateway-cache'), 'miss');
    assert.equal(first.headers.get('age'), null);
    const second = await post(gw, '/chat/completions', chat('hit me'));
    assert.equal(second.status, 200);
    assert.equal(second.headers.get('x-gateway-cache'), 'hit');
    assert.match(second.headers.get('age') ?? '', /^\d+$/);
    assert.equal(second.headers.get('x-gateway-cost-usd'), '0.000000');
    assert.deepEqual(second.body, first.body);
    assert.equal(upstream.calls.length, calls + 1);

    // Key order, insignificant whitespace and the fields that never change an answer do not matter.
    const reordered = await fetch(`${gw.baseURL}/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${APP_KEY}`, 'content-type': 'application/json' },
      body: '{ "messages" : [ { "content":"hit me", "role":"user" } ],\n  "temperature": 0, "model": "gpt-fake", "user": "end-user-9", "metadata": {"a": "b"} }',
    });
    assert.equal(reordered.headers.get('x-gateway-cache'), 'hit');
    assert.equal(upstream.calls.length, calls + 1);

    // Anything that can change the answer is a different entry.
    for (const variant of [chat('hit me!'), chat('hit me', { temperature: 0.0001, seed: 1 }), chat('hit me', { max_tokens: 5 }), chat('hit me', { some_future_param: 1 })]) {
      const res = await post(gw, '/chat/completions', variant);
      assert.equal(res.headers.get('x-gateway-cache'), 'miss', JSON.stringify(variant));
    }
    assert.equal(upstream.calls.length, calls + 5);

    const records = await gw.auditRecords();
    const hit = records.find((r) => (r.cache as { status?: string } | null)?.status === 'hit');
    assert.ok(hit, 'an audit record with a cache hit');
    assert.deepEqual(Object.keys(hit.cache as object).sort(), ['age', 'key', 'scope', 'status']);
    assert.match((hit.cache as { key: string }).key, /^[0-9a-f]{12}$/);
    assert.equal((hit.cost as { nano_usd: number }).nano_usd, 0);
    assert.ok(await metricSum(gw, 'lanegate_cache_requests_total', { result: 'hit', endpoint: 'chat', route: 'gpt-fake', lane: 'shared' }) >= 2);
    assert.ok((await metricSum(gw, 'lanegate_cache_saved_tokens_total', { direction: 'output' })) > 0);
    // gpt-4o-mini is in the shipped price table.
    assert.ok((await metricSum(gw, 'lanegate_cache_saved_usd_total', { route: 'gpt-fake', lane: 'shared' })) > 0);
  });

  it('response cache – keys hold neither prompts nor identities in clear, only hashes and config names', async () => {
    await stored(() => post(gw, '/chat/completions', chat('my secret prompt sk-abcdef')));
    const keys = await cacheKeys();
    assert.ok(keys.length > 0);
    for (const k of keys) {
      assert.match(k, /^cache-test:v1:cache:f\d+\.\d+:(chat|embedding):[A-Za-z0-9%._-]+:[A-Za-z0-9%._-]+:[0-9a-f]{64}$/);
      assert.doesNotMatch(k, /secret|prompt|sk-/);
    }
  });

  it('response cache – sampling without a seed (or n > 1) bypasses unless the model allows it', async () => {
    const calls = upstream.calls.length;
    for (const body of [{ model: 'gpt-fake', messages: [{ role: 'user', content: 'random' }] }, chat('random', { temperature: 0.7 }), chat('random', { n: 2 })]) {
      const a = await post(gw, '/chat/completions', body);
      const b = await post(gw, '/chat/completions', body);
      assert.equal(a.headers.get('x-gateway-cache'), 'bypass');
      assert.equal(b.headers.get('x-gateway-cache'), 'bypass');
    }
    assert.equal(upstream.calls.length, calls + 6);
    // A seed makes a sampled answer repeatable enough to cache.
    await stored(() => post(gw, '/chat/completions', chat('seeded', { temperature: 0.7, seed: 42 })));
    assert.equal((await post(gw, '/chat/completions', chat('seeded', { temperature: 0.7, seed: 42 }))).headers.get('x-gateway-cache'), 'hit');
    // The model's cache rule allows it.
    const loose = { model: 'gpt-loose', messages: [{ role: 'user', content: 'random' }] };
    await stored(() => post(gw, '/chat/completions', loose));
    assert.equal((await post(gw, '/chat/completions', loose)).headers.get('x-gateway-cache'), 'hit');
    // And one that turns caching off.
    const off = chat('never', { model: 'gpt-nocache' });
    assert.equal((await post(gw, '/chat/completions', off)).headers.get('x-gateway-cache'), 'bypass');
    assert.equal((await post(gw, '/chat/completions', off)).headers.get('x-gateway-cache'), 'bypass');
  });

  it('response cache – no-store and x-gateway-cache: off bypass; no-cache and refresh skip the lookup and store', async () => {
    await stored(() => post(gw, '/chat/completions', chat('control')));
    const calls = upstream.calls.length;
    for (const headers of [{ 'cache-control': 'no-store' }, { 'x-gateway-cache': 'off' }, { 'cache-control': 'max-age=0, No-Store' }] as Array<Record<string, string>>) {
      const res = await post(gw, '/chat/completions', chat('control'), headers);
      assert.equal(res.headers.get('x-gateway-cache'), 'bypass', JSON.stringify(headers));
    }
    assert.equal(upstream.calls.length, calls + 3);
    for (const headers of [{ 'cache-control': 'no-cache' }, { 'x-gateway-cache': 'refresh' }] as Array<Record<string, string>>) {
      const res = await stored(() => post(gw, '/chat/completions', chat('control'), headers));
      assert.equal(res.headers.get('x-gateway-cache'), 'miss', JSON.stringify(headers));
    }
    assert.equal(upstream.calls.length, calls + 5);
    const hit = await post(gw, '/chat/completions', chat('control'));
    assert.equal(hit.headers.get('x-gateway-cache'), 'hit');
    assert.equal(hit.headers.get('age'), '0');
    assert.equal(upstream.calls.length, calls + 5);

    const bad = await post(gw, '/chat/completions', chat('control'), { 'x-gateway-cache': 'sometimes' });
    assert.equal(bad.status, 400);
    assert.equal((bad.body.error as { code: string }).code, 'invalid_request');
    assert.equal(upstream.calls.length, calls + 5);
  });

  it('response cache – team scope: another team never hits, the same team does; shared scope shares', async () => {
    const team = { 'x-gateway-lane': 'team' };
    const calls = upstream.calls.length;
    await stored(() => post(gw, '/chat/completions', chat('team question'), team, APP_KEY));
    const otherTeam = await stored(() => post(gw, '/chat/completions', chat('team question'), team, OTHER_KEY));
    assert.equal(otherTeam.headers.get('x-gateway-cache'), 'miss');
    assert.equal(upstream.calls.length, calls + 2);
    const sameTeam = await post(gw, '/chat/completions', chat('team question'), team, GAMMA_KEY);
    assert.equal(sameTeam.headers.get('x-gateway-cache'), 'hit');
    assert.equal(upstream.calls.length, calls + 2);

    // Key scope: even the same team's other key misses.
    await stored(() => post(gw, '/chat/completions', chat('key question'), { 'x-gateway-lane': 'key' }, APP_KEY));
    assert.equal((await post(gw, '/chat/completions', chat('key question'), { 'x-gateway-lane': 'key' }, GAMMA_KEY)).headers.get('x-gateway-cache'), 'miss');
    assert.equal((await post(gw, '/chat/completions', chat('key question'), { 'x-gateway-lane': 'key' }, APP_KEY)).headers.get('x-gateway-cache'), 'hit');

    // Shared scope: another team's key hits.
    await stored(() => post(gw, '/chat/completions', chat('shared question'), {}, APP_KEY));
    assert.equal((await post(gw, '/chat/completions', chat('shared question'), {}, OTHER_KEY)).headers.get('x-gateway-cache'), 'hit');
    // Entries never cross lanes, even between two lanes that would each allow it.
    assert.equal((await post(gw, '/chat/completions', chat('shared question'), { 'x-gateway-lane': 'redacting' }, OTHER_KEY)).headers.get('x-gateway-cache'), 'miss');
  });

  it('response cache – lane `off` never caches, whatever the client asks', async () => {
    const calls = upstream.calls.length;
    for (const headers of [{}, { 'x-gateway-cache': 'refresh' }, {}] as Array<Record<string, string>>) {
      const res = await post(gw, '/chat/completions', chat('off lane'), { 'x-gateway-lane': 'off', ...headers });
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('x-gateway-cache'), 'bypass');
    }
    assert.equal(upstream.calls.length, calls + 3);
    const records = await gw.auditRecords();
    assert.ok(records.some((r) => (r.cache as { reason?: string } | null)?.reason === 'lane_off'));
  });

  it('response cache – held approvals, restored redactions, cut streams and upstream errors are not stored', async () => {
    const tools = [{ type: 'function', function: { name: 'send_email', parameters: { type: 'object' } } }];
    const calls = upstream.calls.length;
    const held = await post(gw, '/chat/completions', chat('use tool send_email args:{"to":"a@example.com"}', { tools }));
    assert.equal(held.status, 200);
    assert.ok(held.headers.get('x-gateway-approvals'));
    assert.equal((await post(gw, '/chat/completions', chat('use tool send_email args:{"to":"a@example.com"}', { tools }))).headers.get('x-gateway-cache'), 'miss');

    // The answer holds the caller's own e-mail address restored.
    const lane = { 'x-gateway-lane': 'redacting' };
    const a = await post(gw, '/chat/completions', chat('mail ann@example.com'), lane);
    assert.match(JSON.stringify(a.body), /ann@example\.com/);
    const b = await post(gw, '/chat/completions', chat('mail bob@example.com'), lane);
    assert.equal(b.headers.get('x-gateway-cache'), 'miss');
    assert.match(JSON.stringify(b.body), /bob@example\.com/);
    assert.doesNotMatch(JSON.stringify(b.body), /ann@/);

    upstream.script({ breakStreamAfterChunks: 2 });
    const cut = await post(gw, '/chat/completions', chat('cut short', { stream: true }));
    assert.match(cut.text, /"error"/);
    upstream.script({ status: 500 });
    assert.equal((await post(gw, '/chat/completions', chat('fails'))).status, 502);
    assert.equal((await post(gw, '/chat/completions', chat('cut short'))).headers.get('x-gateway-cache'), 'miss');
    assert.equal((await post(gw, '/chat/completions', chat('fails'))).headers.get('x-gateway-cache'), 'miss');
    assert.equal(upstream.calls.length, calls + 8);
    assert.ok((await metricSum(gw, 'lanegate_cache_not_stored_total', { reason: 'approvals' })) >= 1);
    assert.ok((await metricSum(gw, 'lanegate_cache_not_stored_total', { reason: 'restored_redactions' })) >= 2);
    assert.ok((await metricSum(gw, 'lanegate_cache_not_stored_total', { reason: 'incomplete' })) >= 1);
  });

  it('response cache – a route sets its own TTL; the entry expires with it', async () => {
    const body = chat('short lived', { model: 'cached-route' });
    await stored(() => post(gw, '/chat/completions', body));
    const keys = await cacheKeys();
    const ttls = await Promise.all(keys.map((k) => raw.pttl(k)));
    assert.ok(ttls.some((t) => t > 0 && t <= 1000), `a key with a TTL of at most 1 s: ${ttls.join(',')}`);
    assert.ok(ttls.some((t) => t > 1000), 'the default TTL elsewhere');
  });

  it('response cache – a corrupted or truncated entry is a miss, deleted and replaced', async () => {
    await stored(() => post(gw, '/chat/completions', chat('fragile', { model: 'gpt-loose' })));
    let key = '';
    let value = '';
    for (const k of await cacheKeys('*:gpt-loose:*')) {
      const v = (await raw.get(k)) ?? '';
      if (v.includes('fragile')) [key, value] = [k, v];
    }
    assert.ok(key);
    const calls = upstream.calls.length;
    for (const broken of [value.slice(0, Math.floor(value.length / 2)), 'not json at all', JSON.stringify({ ...JSON.parse(value), completion: { choices: 'x' } })]) {
      await raw.set(key, broken);
      const res = await stored(() => post(gw, '/chat/completions', chat('fragile', { model: 'gpt-loose' })));
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('x-gateway-cache'), 'miss');
      assert.equal(JSON.parse((await raw.get(key))!).v, 1, 'replaced by a good entry');
    }
    assert.equal(upstream.calls.length, calls + 3);
    assert.equal(await metricSum(gw, 'lanegate_cache_discarded_entries_total', { reason: 'corrupt' }), 3);

    // An entry stored for another scope is never served, even under the right key.
    await raw.set(key, JSON.stringify({ ...JSON.parse(value), scope: 'team:team-beta' }));
    const res = await post(gw, '/chat/completions', chat('fragile', { model: 'gpt-loose' }));
    assert.equal(res.headers.get('x-gateway-cache'), 'miss');
    assert.equal(await metricSum(gw, 'lanegate_cache_discarded_entries_total', { reason: 'scope_mismatch' }), 1);
    assert.match(gw.logs(), /cache entry stored for another scope/);
  });

  it('response cache – oversized answers are not stored', async () => {
    const big = 'x'.repeat(3000);
    const small = await startTestGateway({
      yaml: cacheTestConfig({ openaiUrl: upstream.url, cache: 'cache: { max_entry_bytes: 2048 }' }),
      files: { 'policies/lanes.yaml': CACHE_POLICIES },
    });
    try {
      const calls = upstream.calls.length;
      await post(small, '/chat/completions', chat(big));
      await waitFor('the refusal', async () => (await metricSum(small, 'lanegate_cache_not_stored_total', { reason: 'oversized' })) === 1);
      assert.equal((await post(small, '/chat/completions', chat(big))).headers.get('x-gateway-cache'), 'miss');
      assert.equal(upstream.calls.length, calls + 2);
    } finally {
      await small.close();
    }
  });

  it('response cache – DELETE /admin/cache purges by scope and model, with the admin key only', async () => {
    await stored(() => post(gw, '/chat/completions', chat('purge me'), { 'x-gateway-lane': 'team' }, APP_KEY));
    await stored(() => post(gw, '/chat/completions', chat('purge me'), { 'x-gateway-lane': 'team' }, OTHER_KEY));
    const del = (query: string, key = ADMIN_KEY) => fetch(`${gw.url}/admin/cache${query}`, { method: 'DELETE', headers: { authorization: `Bearer ${key}` } });

    assert.equal((await del('?scope=team:team-alpha', APP_KEY)).status, 401);
    assert.equal((await del('?scope=everyone')).status, 400);
    const purged = await del('?scope=team:team-alpha&model=gpt-fake');
    assert.equal(purged.status, 200);
    const body = (await purged.json()) as { deleted: number };
    assert.ok(body.deleted >= 1);
    const again = await stored(() => post(gw, '/chat/completions', chat('purge me'), { 'x-gateway-lane': 'team' }, APP_KEY));
    assert.equal(again.headers.get('x-gateway-cache'), 'miss');
    assert.equal((await post(gw, '/chat/completions', chat('purge me'), { 'x-gateway-lane': 'team' }, OTHER_KEY)).headers.get('x-gateway-cache'), 'hit');

    const all = (await (await del('')).json()) as { deleted: number };
    assert.ok(all.deleted >= 1);
    assert.deepEqual(await cacheKeys(), []);
  });
});
