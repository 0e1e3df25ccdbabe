import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startFakeOpenAI, type FakeOpenAI } from '../helpers/fake-openai.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';

describe('embeddings', () => {
  let upstream: FakeOpenAI;
  let gw: TestGateway;
  before(async () => {
    upstream = await startFakeOpenAI();
    gw = await startTestGateway({ openaiUrl: upstream.url });
  });
  after(async () => {
    await gw.close();
    await upstream.close();
  });

  it('embeddings – a string and an array, with dimensions, through an OpenAI upstream', async () => {
    const client = gw.client();
    const one = await client.embeddings.create({ model: 'embed-fake', input: 'hello', encoding_format: 'float' });
    assert.equal(one.data.length, 1);
    assert.equal(one.data[0]!.embedding.length, 4);
    const many = await client.embeddings.create({ model: 'embed-fake', input: ['a', 'bb', 'ccc'], dimensions: 6, encoding_format: 'float' });
    assert.deepEqual(many.data.map((d) => d.index), [0, 1, 2]);
    assert.equal(many.data[2]!.embedding.length, 6);
    assert.equal(upstream.calls.at(-1)!.body.dimensions, 6);
    assert.equal(upstream.calls.at(-1)!.body.model, 'text-embedding-3-small');
  });

  it('embeddings – base64 is passed through and decodes to the same floats', async () => {
    const res = await fetch(`${gw.baseURL}/embeddings`, {
      method: 'POST',
      headers: { authorization: `Bearer ${(await import('../helpers/gateway.js')).APP_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'embed-fake', input: 'hello', encoding_format: 'base64' }),
    });
    const body = (await res.json()) as { data: Array<{ embedding: string }> };
    assert.equal(typeof body.data[0]!.embedding, 'string');
    const floats = new Float32Array(new Uint8Array(Buffer.from(body.data[0]!.embedding, 'base64')).buffer);
    assert.equal(floats.length, 4);
    // the SDK asks for base64 by default and decodes it
    const viaSdk = await gw.client().embeddings.create({ model: 'embed-fake', input: 'hello' });
    assert.deepEqual(viaSdk.data[0]!.embedding, Array.from(floats));
  });

  it('embeddings – the mock is deterministic in float and base64', async () => {
    const client = gw.client();
    const a = await client.embeddings.create({ model: 'embed-mock', input: ['same text', 'other'], encoding_format: 'float' });
    const b = await client.embeddings.create({ model: 'embed-mock', input: 'same text' });
    assert.equal(a.data[0]!.embedding.length, 16);
    assert.deepEqual(b.data[0]!.embedding, a.data[0]!.embedding);
    assert.notDeepEqual(a.data[1]!.embedding, a.data[0]!.embedding);
    assert.ok(a.usage.prompt_tokens > 0);
  });

  it('embeddings – bad input is refused before the upstream', async () => {
    const calls = upstream.calls.length;
    const { APP_KEY } = await import('../helpers/gateway.js');
    for (const body of [{ model: 'embed-fake', input: [] }, { model: 'embed-fake', input: 42 }, { model: 'embed-fake', input: 'x', encoding_format: 'hex' }, { model: 'gpt-fake', input: 'x' }]) {
      const res = await fetch(`${gw.baseURL}/embeddings`, {
        method: 'POST',
        headers: { authorization: `Bearer ${APP_KEY}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      assert.equal(res.status, 400, JSON.stringify(body));
    }
    assert.equal(upstream.calls.length, calls);
  });
});
