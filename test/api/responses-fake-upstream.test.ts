// The fake OpenAI upstream's Responses API, which later ingress tests use as
// an upstream that speaks it natively: checked here with the openai SDK.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import OpenAI from 'openai';
import { startFakeOpenAI } from '../helpers/fake-openai.js';

test('fake openai /v1/responses – plain, streamed, function call, broken stream', async (t) => {
  const fake = await startFakeOpenAI();
  t.after(() => fake.close());
  const client = new OpenAI({ apiKey: 'k', baseURL: `${fake.url}/v1`, maxRetries: 0 });

  const r = await client.responses.create({ model: 'gpt-x', input: 'hi there' });
  assert.equal(r.output_text, 'Hello from fake-openai responses: hi there');
  assert.equal(r.usage?.total_tokens, 11 + 6);
  assert.equal(fake.calls[0]?.path, '/v1/responses');

  const stream = client.responses.stream({ model: 'gpt-x', input: 'stream me' });
  const deltas: string[] = [];
  stream.on('response.output_text.delta', (e) => deltas.push(e.delta));
  const final = await stream.finalResponse();
  assert.equal(final.output_text, 'Hello from fake-openai responses: stream me');
  assert.equal(deltas.join(''), final.output_text);

  const called = await client.responses.create({
    model: 'gpt-x',
    input: 'use tool weather args:{"city":"Oslo"}',
    tools: [{ type: 'function', name: 'weather', parameters: { type: 'object' }, strict: false }],
  });
  const call = called.output[0];
  assert.ok(call?.type === 'function_call');
  assert.deepEqual([call.name, call.call_id, JSON.parse(call.arguments)], ['weather', 'call_fake_1', { city: 'Oslo' }]);

  fake.script({ breakStreamAfterChunks: 4 });
  await assert.rejects(client.responses.stream({ model: 'gpt-x', input: 'cut' }).finalResponse());
});
