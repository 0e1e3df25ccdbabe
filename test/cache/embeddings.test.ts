import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { FakeOpenAI } from '../helpers/fake-openai.js';
import { OTHER_KEY, type TestGateway } from '../helpers/gateway.js';
import type { TestRedis } from '../helpers/redis.js';
import { startCacheRig, stopCacheRig, storedEntry, metricSum, post } from './fixtures.js';

interface EmbeddingsBody {
  data: Array<{ index: number; embedding: number[] | string }>;
  model: string;
  usage: { prompt_tokens: number; total_tokens: number };
}

/** What the fake upstream answers for one input: 4 dims, ((length + i) % 7) / 7. */
function expectedVector(text: string, dims = 4): number[] {
  return Array.from({ length: dims }, (_, i) => ((text.length + i) % 7) / 7);
}

function floats(base64: string): number[] {
  const bytes = Buffer.from(base64, 'base64');
  return Array.from(new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4));
}

describe('embeddings cache', () => {
  let upstream: FakeOpenAI;
  let redis: TestRedis;
  let gw: TestGateway;
  before(async () => {
    ({ upstream, redis, gw } = await startCacheRig());
  });
  after(async () => {
    await stopCacheRig({ upstream, redis, gw });
  });

  const stored = <T>(fn: () => Promise<T>) => storedEntry(gw, fn, { endpoint: 'embeddings' });

  const embed = (body: Record<string, unknown>, headers: Record<string, string> = {}) => post(gw, '/embeddings', { model: 'embed-fake', ...body }, headers);

  it('embeddings cache – 100 inputs with 80 cached: upstream gets exactly the 20 misses; order and usage are right', async () => {
    // Inputs of three words each: the fake counts one token per word.
    const inputs = Array.from({ length: 100 }, (_, i) => `input number ${'x'.repeat(i % 9)}${i}`);
    const cached = inputs.filter((_, i) => i % 5 !== 0);
    const missing = inputs.filter((_, i) => i % 5 === 0);
    const calls = upstream.calls.length;
    const warm = await stored(() => embed({ input: cached, encoding_format: 'float' }));
    assert.equal(warm.headers.get('x-gateway-cache'), 'miss');

    const res = await stored(() => embed({ input: inputs, encoding_format: 'float' }));
    assert.equal(res.status, 200);
    assert.equal(upstream.calls.length, calls + 2);
    assert.deepEqual(upstream.calls.at(-1)!.body.input, missing);
    assert.equal(res.headers.get('x-gateway-cache'), 'miss');
    assert.equal(res.headers.get('x-gateway-cache-hits'), '80/100');
    const body = res.body as unknown as EmbeddingsBody;
    assert.deepEqual(body.data.map((d) => d.index), inputs.map((_, i) => i));
    assert.deepEqual(body.data.map((d) => d.embedding), inputs.map((t) => expectedVector(t)));
    assert.deepEqual(body.usage, { prompt_tokens: 300, total_tokens: 300 });
    assert.equal(body.model, 'text-embedding-3-small');

    // Now every input is cached: no upstream call, the same answer.
    const all = await embed({ input: inputs, encoding_format: 'float' });
    assert.equal(all.headers.get('x-gateway-cache'), 'hit');
    assert.match(all.headers.get('age') ?? '', /^\d+$/);
    assert.deepEqual(all.body, res.body);
    assert.equal(upstream.calls.length, calls + 2);
    assert.equal(await metricSum(gw, 'lanegate_cache_embedding_items_total', { result: 'hit' }), 180);
    assert.equal(await metricSum(gw, 'lanegate_cache_requests_total', { endpoint: 'embeddings', result: 'partial' }), 1);
    assert.ok((await metricSum(gw, 'lanegate_cache_saved_tokens_total', { route: 'embed-fake', direction: 'input' })) >= 540);

    // Through the SDK, which asks for base64 and decodes it: float32 of the same vectors.
    const sdk = await gw.client().embeddings.create({ model: 'embed-fake', input: inputs }).withResponse();
    assert.equal(sdk.response.headers.get('x-gateway-cache'), 'hit');
    assert.deepEqual(sdk.data.data.map((d) => d.embedding), inputs.map((t) => expectedVector(t).map(Math.fround)));
    assert.equal(sdk.data.usage.prompt_tokens, 300);
    assert.equal(upstream.calls.length, calls + 2);
  });

  it('embeddings cache – base64 partial hits: float entries served as base64, upstream misses stored from base64', async () => {
    const inputs = Array.from({ length: 15 }, (_, i) => `b64 ${'y'.repeat(i)}`);
    const calls = upstream.calls.length;
    await stored(() => embed({ input: inputs.slice(0, 10), encoding_format: 'float' }));
    const res = await stored(() => embed({ input: inputs, encoding_format: 'base64' }));
    assert.equal(upstream.calls.length, calls + 2);
    assert.deepEqual(upstream.calls.at(-1)!.body.input, inputs.slice(10));
    assert.equal(upstream.calls.at(-1)!.body.encoding_format, 'base64');
    const body = res.body as unknown as EmbeddingsBody;
    assert.ok(body.data.every((d) => typeof d.embedding === 'string'));
    assert.deepEqual(body.data.map((d) => floats(d.embedding as string)), inputs.map((t) => expectedVector(t).map(Math.fround)));
    assert.deepEqual(body.usage, { prompt_tokens: 30, total_tokens: 30 });

    // The five stored from a base64 answer are served as floats (float32 values, exactly).
    const asFloat = await embed({ input: inputs.slice(10), encoding_format: 'float' });
    assert.equal(asFloat.headers.get('x-gateway-cache'), 'hit');
    assert.deepEqual((asFloat.body as unknown as EmbeddingsBody).data.map((d) => d.embedding), inputs.slice(10).map((t) => expectedVector(t).map(Math.fround)));
    assert.equal(upstream.calls.length, calls + 2);
  });

  it('embeddings cache – keyed by dimensions and scope; a single string and token arrays work; lane off bypasses', async () => {
    const calls = upstream.calls.length;
    await stored(() => embed({ input: 'dimension test', encoding_format: 'float' }));
    const six = await stored(() => embed({ input: 'dimension test', dimensions: 6, encoding_format: 'float' }));
    assert.equal(six.headers.get('x-gateway-cache'), 'miss');
    assert.equal((six.body as unknown as EmbeddingsBody).data[0]!.embedding.length, 6);
    const again = await embed({ input: 'dimension test', dimensions: 6, encoding_format: 'float' });
    assert.equal(again.headers.get('x-gateway-cache'), 'hit');
    assert.equal((again.body as unknown as EmbeddingsBody).data[0]!.embedding.length, 6);
    assert.equal(upstream.calls.length, calls + 2);

    await stored(() => embed({ input: [[1, 2, 3], [4, 5]] }));
    assert.equal((await embed({ input: [[4, 5], [1, 2, 3]] })).headers.get('x-gateway-cache'), 'hit');
    assert.equal(upstream.calls.length, calls + 3);

    // Team scope: the other team's key misses.
    await stored(() => embed({ input: 'team vectors' }, { 'x-gateway-lane': 'team' }));
    const other = await post(gw, '/embeddings', { model: 'embed-fake', input: 'team vectors' }, { 'x-gateway-lane': 'team' }, OTHER_KEY);
    assert.equal(other.headers.get('x-gateway-cache'), 'miss');
    assert.equal(upstream.calls.length, calls + 5);

    for (let i = 0; i < 2; i++) assert.equal((await embed({ input: 'off lane' }, { 'x-gateway-lane': 'off' })).headers.get('x-gateway-cache'), 'bypass');
    assert.equal(upstream.calls.length, calls + 7);
  });
});
