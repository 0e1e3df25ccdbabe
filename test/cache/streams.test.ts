import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startFakeOpenAI, type FakeOpenAI } from '../helpers/fake-openai.js';
import { APP_KEY, startTestGateway, type TestGateway } from '../helpers/gateway.js';
import type { TestRedis } from '../helpers/redis.js';
import { CACHE_POLICIES, cacheTestConfig, startCacheRig, stopCacheRig, storedEntry, chat, metricSum, post, sseEvents, waitFor } from './fixtures.js';

describe('response cache – streams', () => {
  let upstream: FakeOpenAI;
  let redis: TestRedis;
  let gw: TestGateway;
  before(async () => {
    ({ upstream, redis, gw } = await startCacheRig());
  });
  after(async () => {
    await stopCacheRig({ upstream, redis, gw });
  });

  const stored = <T>(fn: () => Promise<T>) => storedEntry(gw, fn);

  async function streamText(body: Record<string, unknown>): Promise<{ text: string; usage: unknown; chunks: number }> {
    const stream = await gw.client().chat.completions.create({ ...(body as { model: string; messages: [] }), stream: true });
    let text = '';
    let usage: unknown;
    let chunks = 0;
    for await (const chunk of stream) {
      chunks++;
      text += chunk.choices[0]?.delta?.content ?? '';
      if (chunk.usage) usage = chunk.usage;
    }
    return { text, usage, chunks };
  }

  it('streams – a streamed miss is stored when it ends, and replayed as a valid stream with usage', async () => {
    const calls = upstream.calls.length;
    const body = chat('stream me please', { stream_options: { include_usage: true } });
    const first = await stored(() => streamText(body));
    assert.equal(first.text, 'Hello from fake-openai: stream me please');
    assert.equal(upstream.calls.length, calls + 1);

    const raw = await post(gw, '/chat/completions', { ...body, stream: true });
    assert.equal(raw.headers.get('x-gateway-cache'), 'hit');
    assert.match(raw.headers.get('content-type') ?? '', /text\/event-stream/);
    assert.match(raw.text, /data: \[DONE\]\n\n$/);
    const events = sseEvents(raw.text);
    assert.ok(events.every((e) => e.object === 'chat.completion.chunk' && e.id === 'chatcmpl-fake-1'));
    const usageChunk = events.at(-1)!;
    assert.deepEqual(usageChunk.choices, []);
    assert.deepEqual(usageChunk.usage, first.usage);
    assert.equal((events.at(-2)!.choices as Array<{ finish_reason: string }>)[0]!.finish_reason, 'stop');

    const again = await streamText(body);
    assert.equal(again.text, first.text);
    assert.deepEqual(again.usage, first.usage);
    // Without include_usage there is no usage chunk, as from a provider.
    const noUsage = sseEvents((await post(gw, '/chat/completions', chat('stream me please', { stream: true }))).text);
    assert.ok(noUsage.every((e) => e.usage === undefined && (e.choices as unknown[]).length > 0));
    assert.equal(upstream.calls.length, calls + 1);
  });

  it('streams – a non-streaming hit of a streamed entry, and a streamed hit of a non-streaming one', async () => {
    const calls = upstream.calls.length;
    const streamed = await stored(() => streamText(chat('first streamed')));
    const json = await gw.client().chat.completions.create({ ...(chat('first streamed') as { model: string; messages: [] }) }, {});
    assert.equal(json.choices[0]!.message.content, streamed.text);
    assert.equal(json.choices[0]!.finish_reason, 'stop');
    assert.equal(json.usage!.completion_tokens, 5);
    assert.equal(json.object, 'chat.completion');

    const plain = await stored(() => post(gw, '/chat/completions', chat('first plain')));
    const replay = await streamText(chat('first plain', { stream_options: { include_usage: true } }));
    const choice = (plain.body.choices as Array<{ message: { content: string } }>)[0]!;
    assert.equal(replay.text, choice.message.content);
    assert.deepEqual(replay.usage, plain.body.usage);
    assert.equal(upstream.calls.length, calls + 2);
  });

  it('streams – tool calls streamed in pieces are assembled, then served whole in either form', async () => {
    const tools = [{ type: 'function', function: { name: 'search', parameters: { type: 'object' } } }];
    const body = chat('use tool search args:{"query":"cached tools"}', { tools });
    const calls = upstream.calls.length;
    await stored(() => post(gw, '/chat/completions', { ...body, stream: true }));
    const json = await post(gw, '/chat/completions', body);
    assert.equal(json.headers.get('x-gateway-cache'), 'hit');
    const choice = (json.body.choices as Array<{ message: { content: unknown; tool_calls: Array<{ id: string; function: { name: string; arguments: string } }> }; finish_reason: string }>)[0]!;
    assert.equal(choice.finish_reason, 'tool_calls');
    assert.equal(choice.message.content, null);
    assert.deepEqual(choice.message.tool_calls.map((c) => [c.id, c.function.name, c.function.arguments]), [['call_fake_1', 'search', '{"query":"cached tools"}']]);

    const stream = await gw.client().chat.completions.create({ ...(body as { model: string; messages: [] }), stream: true });
    let args = '';
    for await (const chunk of stream) args += chunk.choices[0]?.delta?.tool_calls?.[0]?.function?.arguments ?? '';
    assert.equal(args, '{"query":"cached tools"}');
    assert.equal(upstream.calls.length, calls + 1);
  });

  it('streams – a client that leaves mid-stream stores nothing', async () => {
    upstream.script({ chunkDelayMs: 50 });
    const controller = new AbortController();
    const res = await fetch(`${gw.baseURL}/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${APP_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify(chat('leave early please now', { stream: true })),
      signal: controller.signal,
    });
    const reader = res.body!.getReader();
    let seen = '';
    while (!seen.includes('"content":"Hello')) seen += new TextDecoder().decode((await reader.read()).value);
    controller.abort();
    await waitFor('the refusal', async () => (await metricSum(gw, 'lanegate_cache_not_stored_total', { reason: 'incomplete' })) >= 1);
    const calls = upstream.calls.length;
    assert.equal((await post(gw, '/chat/completions', chat('leave early please now'))).headers.get('x-gateway-cache'), 'miss');
    assert.equal(upstream.calls.length, calls + 1);
  });
});

describe('response cache – single flight', () => {
  let upstream: FakeOpenAI;
  let gw: TestGateway;
  before(async () => {
    upstream = await startFakeOpenAI();
    gw = await startTestGateway({ yaml: cacheTestConfig({ openaiUrl: upstream.url, cache: 'cache: { single_flight_timeout_ms: 3000 }' }), files: { 'policies/lanes.yaml': CACHE_POLICIES } });
  });
  after(async () => {
    await gw.close();
    await upstream.close();
  });

  it('single flight – 50 concurrent identical requests make one upstream call', async () => {
    upstream.script({ delayMs: 300 });
    const calls = upstream.calls.length;
    const replies = await Promise.all(Array.from({ length: 50 }, () => post(gw, '/chat/completions', chat('all at once'))));
    assert.equal(upstream.calls.length, calls + 1);
    assert.ok(replies.every((r) => r.status === 200));
    assert.ok(replies.every((r) => JSON.stringify(r.body) === JSON.stringify(replies[0]!.body)));
    const status = replies.map((r) => r.headers.get('x-gateway-cache'));
    assert.equal(status.filter((s) => s === 'miss').length, 1);
    assert.equal(status.filter((s) => s === 'hit').length, 49);
    assert.equal(await metricSum(gw, 'lanegate_cache_single_flight_total', { outcome: 'served' }), 49);
  });

  it('single flight – streams and plain requests share one flight; another scope does not', async () => {
    upstream.script({ chunkDelayMs: 30 });
    const calls = upstream.calls.length;
    const replies = await Promise.all([
      post(gw, '/chat/completions', chat('mixed flight', { stream: true })),
      ...Array.from({ length: 5 }, (_, i) => post(gw, '/chat/completions', chat('mixed flight', i % 2 ? { stream: true } : {}))),
    ]);
    assert.equal(upstream.calls.length, calls + 1);
    assert.ok(replies.every((r) => r.status === 200));
    const other = await post(gw, '/chat/completions', chat('mixed flight'), { 'x-gateway-lane': 'team' });
    assert.equal(other.headers.get('x-gateway-cache'), 'miss');
    assert.equal(upstream.calls.length, calls + 2);
  });

  it('single flight – when the first request fails, the waiting ones call upstream themselves', async () => {
    upstream.script({ stallAfterHeaders: true });
    const calls = upstream.calls.length;
    const leader = post(gw, '/chat/completions', chat('leader fails', { stream: true }));
    await waitFor('the leader upstream', () => upstream.calls.length === calls + 1);
    const followers = await Promise.all(Array.from({ length: 5 }, () => post(gw, '/chat/completions', chat('leader fails'))));
    assert.equal((await leader).status, 504);
    assert.ok(followers.every((r) => r.status === 200 && r.headers.get('x-gateway-cache') === 'miss'));
    assert.equal(upstream.calls.length, calls + 6);
    assert.equal(await metricSum(gw, 'lanegate_cache_single_flight_total', { outcome: 'none' }), 5);
  });

  it('single flight – a waiting request whose client leaves stops waiting and calls nobody', async () => {
    upstream.script({ delayMs: 800 });
    const calls = upstream.calls.length;
    const aborted = await metricSum(gw, 'lanegate_cache_single_flight_total', { outcome: 'aborted' });
    const leader = post(gw, '/chat/completions', chat('client leaves'));
    await waitFor('the leader upstream', () => upstream.calls.length === calls + 1);
    const gone = new AbortController();
    const follower = fetch(`${gw.baseURL}/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${APP_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify(chat('client leaves')),
      signal: gone.signal,
    }).catch((err: unknown) => err);
    await new Promise((r) => setTimeout(r, 150));
    gone.abort();
    await follower;
    await waitFor('the follower to stop waiting', async () => (await metricSum(gw, 'lanegate_cache_single_flight_total', { outcome: 'aborted' })) === aborted + 1);
    assert.equal((await leader).status, 200);
    assert.equal(upstream.calls.length, calls + 1, 'the follower that left never went upstream');
  });

  it('single flight – waiting ones give up after single_flight_timeout_ms and call upstream', async () => {
    const quick = await startTestGateway({ yaml: cacheTestConfig({ openaiUrl: upstream.url, cache: 'cache: { single_flight_timeout_ms: 100 }' }), files: { 'policies/lanes.yaml': CACHE_POLICIES } });
    try {
      upstream.script({ delayMs: 1000 });
      const calls = upstream.calls.length;
      const leader = post(quick, '/chat/completions', chat('slow leader'));
      await waitFor('the leader upstream', () => upstream.calls.length === calls + 1);
      const followers = await Promise.all(Array.from({ length: 3 }, () => post(quick, '/chat/completions', chat('slow leader'))));
      assert.ok(followers.every((r) => r.status === 200));
      assert.equal((await leader).status, 200);
      assert.equal(upstream.calls.length, calls + 4);
      assert.equal(await metricSum(quick, 'lanegate_cache_single_flight_total', { outcome: 'timeout' }), 3);
    } finally {
      await quick.close();
    }
  });
});
