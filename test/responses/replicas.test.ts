// Stored responses in Redis: a conversation started on one replica continues
// on another, and the client family is told apart per request.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { clientFamily } from '../../src/api/client-family.js';
import { startFakeOpenAI, type FakeOpenAI } from '../helpers/fake-openai.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';

describe('stored responses across replicas', () => {
  let redis: TestRedis;
  let upstream: FakeOpenAI;
  let a: TestGateway;
  let b: TestGateway;
  before(async () => {
    redis = await startRedis();
    upstream = await startFakeOpenAI();
    const extra = `\nredis: { url: "${redis.url}", key_prefix: responses-test }\n`;
    a = await startTestGateway({ openaiUrl: upstream.url, extra });
    b = await startTestGateway({ openaiUrl: upstream.url, extra });
  });
  after(async () => {
    await a.close();
    await b.close();
    await upstream.close();
    await redis.stop();
  });

  it('redis – a response stored by one gateway is read, continued and deleted through another', async () => {
    const first = await a.client().responses.create({ model: 'gpt-fake', input: 'started on a' });
    const got = await b.client().responses.retrieve(first.id);
    assert.equal(got.output_text, first.output_text);
    const second = await b.client().responses.create({ model: 'gpt-fake', input: 'continued on b', previous_response_id: first.id });
    assert.equal(second.output_text, 'Hello from fake-openai: continued on b');
    const sent = upstream.calls.at(-1)!.body as { messages: Array<{ role: string }> };
    assert.deepEqual(sent.messages.map((m) => m.role), ['user', 'assistant', 'user']);
    await b.client().responses.delete(first.id);
    await assert.rejects(a.client().responses.retrieve(first.id), (err: { status?: number }) => err.status === 404);
  });
});

describe('stored responses – read right after the reply', () => {
  // CLIENT PAUSE ... WRITE holds every write while reads go on: a store write
  // left until after the reply is still waiting when the client reads the
  // response back; one made before the reply was sent (as it must be) has
  // landed. The pause is longer than the test needs, and ends early (UNPAUSE).
  let redis: TestRedis;
  let upstream: FakeOpenAI;
  let gateway: TestGateway;
  let admin: Redis;
  before(async () => {
    redis = await startRedis();
    upstream = await startFakeOpenAI();
    gateway = await startTestGateway({ openaiUrl: upstream.url, extra: `\nredis: { url: "${redis.url}", key_prefix: read-after-reply }\n` });
    admin = new Redis(redis.url);
  });
  after(async () => {
    admin.disconnect();
    await gateway.close();
    await upstream.close();
    await redis.stop();
  });
  const holdWrites = () => admin.call('CLIENT', 'PAUSE', '1500', 'WRITE');
  const release = () => admin.call('CLIENT', 'UNPAUSE');

  it('retrieve – right after create, the response is there', async () => {
    await holdWrites();
    try {
      const created = await gateway.client().responses.create({ model: 'gpt-fake', input: 'read me back' });
      const got = await gateway.client().responses.retrieve(created.id);
      assert.equal(got.output_text, created.output_text);
    } finally {
      await release();
    }
  });

  it('previous_response_id – right after a streamed create, the conversation continues', async () => {
    await holdWrites();
    try {
      const stream = await gateway.client().responses.create({ model: 'gpt-fake', input: 'first turn', stream: true });
      let id = '';
      for await (const event of stream) if (event.type === 'response.completed') id = event.response.id;
      assert.ok(id, 'the stream completed');
      const second = await gateway.client().responses.create({ model: 'gpt-fake', input: 'second turn', previous_response_id: id });
      assert.equal(second.output_text, 'Hello from fake-openai: second turn');
      const sent = upstream.calls.at(-1)!.body as { messages: Array<{ role: string }> };
      assert.deepEqual(sent.messages.map((m) => m.role), ['user', 'assistant', 'user']);
    } finally {
      await release();
    }
  });
});

describe('client family', () => {
  it('clientFamily – names the agents and SDKs, and nothing else', () => {
    assert.equal(clientFamily('claude-cli/1.0.83 (external, cli)'), 'claude-cli');
    assert.equal(clientFamily('Agents/JavaScript 0.1.0'), 'openai-agents');
    assert.equal(clientFamily('OpenAI/JS 5.12.0'), 'openai-node');
    assert.equal(clientFamily('OpenAI/Python 1.99.1'), 'openai-python');
    assert.equal(clientFamily('Anthropic/JS 0.60.0'), 'anthropic-sdk');
    assert.equal(clientFamily('ai-sdk/openai/2.0.0 ai-sdk/provider-utils/3.0.0 runtime/node.js/20'), 'ai-sdk');
    assert.equal(clientFamily('langchainjs-openai/0.5.0'), 'langchain');
    assert.equal(clientFamily('curl/8.5.0'), 'other');
    assert.equal(clientFamily(undefined), 'none');
    // The one-entry memo must not answer for a different header.
    assert.equal(clientFamily('curl/8.5.0'), 'other');
    assert.equal(clientFamily('OpenAI/JS 5.12.0'), 'openai-node');
  });
});
