// A Responses-native upstream (an openai provider with responses_api: true):
// POST /v1/responses goes out as a Responses request, the governance stages
// still apply, and the client gets a Response made by the gateway.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Agent, run, setDefaultOpenAIClient, setTracingDisabled, tool } from '@openai/agents';
import OpenAI, { type APIError } from 'openai';
import { z } from 'zod';
import { startFakeOpenAI, type FakeOpenAI } from '../helpers/fake-openai.js';
import { APP_KEY, defaultTestConfig, startTestGateway, UPSTREAM_SECRET, type TestGateway } from '../helpers/gateway.js';

describe('responses API to a Responses-native upstream', () => {
  let upstream: FakeOpenAI;
  let gw: TestGateway;
  let client: OpenAI;
  before(async () => {
    upstream = await startFakeOpenAI();
    const yaml = defaultTestConfig({ openaiUrl: upstream.url })
      .replace(
        'providers:\n',
        `providers:\n  native:\n    type: openai\n    base_url: ${upstream.url}/v1\n    api_key: ${UPSTREAM_SECRET}\n    responses_api: true\n    retry: { max_retries: 0 }\n    breaker: { enabled: false }\n`,
      )
      .replace('models:\n', 'models:\n  gpt-native: { deployments: [{ provider: native, model: gpt-4o-upstream }] }\n');
    gw = await startTestGateway({ yaml });
    client = gw.client();
  });
  after(async () => {
    await gw.close();
    await upstream.close();
  });

  it('native – the request goes out as a Responses request, the whole conversation, nothing stored upstream', async () => {
    const first = await client.responses.create({ model: 'gpt-native', input: 'first turn', instructions: 'Be brief.', metadata: { team: 'x' } });
    assert.equal(first.output_text, 'Hello from fake-openai responses: first turn');
    assert.equal(first.model, 'gpt-native');
    assert.match(first.id, /^resp_[0-9a-f]{48}$/, 'the gateway\'s id, not the upstream\'s');
    const sent = upstream.calls.at(-1)!;
    assert.equal(sent.path, '/v1/responses');
    assert.equal(sent.body.model, 'gpt-4o-upstream');
    assert.equal(sent.body.instructions, 'Be brief.');
    assert.equal(sent.body.store, false);
    assert.deepEqual(sent.body.input, [{ type: 'message', role: 'user', content: 'first turn' }]);
    assert.equal(sent.headers.authorization, `Bearer ${UPSTREAM_SECRET}`);

    const second = await client.responses.create({ model: 'gpt-native', input: 'second turn', previous_response_id: first.id });
    assert.equal(second.output_text, 'Hello from fake-openai responses: second turn');
    const body = upstream.calls.at(-1)!.body;
    assert.equal(body.previous_response_id, undefined, 'the upstream never sees the gateway\'s ids');
    assert.equal((body.input as unknown[]).length, 3);
  });

  it('native – a hosted tool goes to the Responses upstream; to a chat-only model it is a 400 with no upstream call', async () => {
    const r = await client.responses.create({ model: 'gpt-native', input: 'what is new?', tools: [{ type: 'web_search' }], reasoning: { summary: 'auto' } });
    assert.equal(r.status, 'completed');
    const sent = upstream.calls.at(-1)!.body;
    assert.deepEqual(sent.tools, [{ type: 'web_search' }]);
    assert.deepEqual(sent.reasoning, { summary: 'auto' });
    const calls = upstream.calls.length;
    await assert.rejects(
      client.responses.create({ model: 'gpt-fake', input: 'what is new?', tools: [{ type: 'web_search' }] }),
      (err: APIError) => err.status === 400 && (err.error as { param?: string }).param === 'tools[0]',
    );
    assert.equal(upstream.calls.length, calls);
  });

  it('native – reasoning items from the upstream reach the client (create and stream) and go back on the next turn', async () => {
    const expected = { type: 'reasoning', id: 'rs_fake_1', summary: [{ type: 'summary_text', text: 'Reasoned about: think first' }], encrypted_content: 'gAAAAfakeEncrypted==' };
    const first = await client.responses.create({ model: 'gpt-native', input: 'think first', reasoning: { effort: 'low', summary: 'auto' } });
    assert.deepEqual(first.output[0], expected);
    assert.equal(first.output_text, 'Hello from fake-openai responses: think first');
    const stream = await client.responses.create({ model: 'gpt-native', input: 'think first', reasoning: { effort: 'low', summary: 'auto' }, stream: true });
    let completed: OpenAI.Responses.Response | undefined;
    const done: unknown[] = [];
    for await (const event of stream) {
      if (event.type === 'response.output_item.done') done.push(event.item);
      if (event.type === 'response.completed') completed = event.response;
    }
    assert.deepEqual(done[0], expected);
    assert.deepEqual(completed?.output[0], expected);
    // The conversation continues with the reasoning item in it, as OpenAI's own store would.
    await client.responses.create({ model: 'gpt-native', input: 'and next?', previous_response_id: first.id, reasoning: { effort: 'low' } });
    const input = upstream.calls.at(-1)!.body.input as Array<{ type?: string }>;
    assert.deepEqual(input[1], expected);
  });

  it('native – streamed, as the typed event sequence', async () => {
    const stream = client.responses.stream({ model: 'gpt-native', input: 'stream natively' });
    let text = '';
    for await (const event of stream) if (event.type === 'response.output_text.delta') text += event.delta;
    const final = await stream.finalResponse();
    assert.equal(text, 'Hello from fake-openai responses: stream natively');
    assert.equal(final.status, 'completed');
    assert.equal(final.usage?.input_tokens, 11);
    assert.equal(upstream.calls.at(-1)!.body.stream, true);
  });

  it('native – a stream cut mid-answer ends with response.failed', async () => {
    upstream.script({ breakStreamAfterChunks: 5 });
    const stream = client.responses.stream({ model: 'gpt-native', input: 'cut me off somewhere along the way please' });
    const types: string[] = [];
    for await (const event of stream) types.push(event.type);
    assert.ok(types.includes('response.output_text.delta'), types.join(','));
    assert.deepEqual(types.slice(-2), ['response.failed', 'error']);
  });

  it('native – the Agents SDK runs a function tool to completion', async () => {
    setTracingDisabled(true);
    // @openai/agents types the client with the openai version it bundles; the instance is the same API.
    setDefaultOpenAIClient(new OpenAI({ apiKey: APP_KEY, baseURL: gw.baseURL, maxRetries: 0 }) as unknown as Parameters<typeof setDefaultOpenAIClient>[0]);
    const seen: string[] = [];
    const lookup = tool({
      name: 'lookup',
      description: 'Looks a word up.',
      parameters: z.object({ word: z.string() }),
      execute: async ({ word }) => {
        seen.push(word);
        return `definition of ${word}`;
      },
    });
    const agent = new Agent({ name: 'dictionary', instructions: 'Look words up.', model: 'gpt-native', tools: [lookup] });
    const calls = upstream.calls.length;
    const result = await run(agent, 'use tool lookup args:{"word":"gateway"}');
    assert.deepEqual(seen, ['gateway']);
    assert.equal(result.finalOutput, 'Hello from fake-openai responses: definition of gateway');
    const sent = upstream.calls.slice(calls);
    assert.equal(sent.length, 2);
    assert.ok(sent.every((c) => c.path === '/v1/responses'));
  });
});
