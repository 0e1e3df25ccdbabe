// POST /v1/responses through the real gateway with the openai SDK, against a
// chat-only fake upstream: plain, streamed, function tools over two turns,
// previous_response_id, json_schema output, stored responses and input items.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type OpenAI from 'openai';
import type { APIError } from 'openai';
import { startFakeOpenAI, type FakeOpenAI } from '../helpers/fake-openai.js';
import { APP_KEY, OTHER_KEY, startTestGateway, type TestGateway } from '../helpers/gateway.js';

describe('responses API through the gateway (chat-only upstream)', () => {
  let upstream: FakeOpenAI;
  let gw: TestGateway;
  let client: OpenAI;
  before(async () => {
    upstream = await startFakeOpenAI();
    gw = await startTestGateway({ openaiUrl: upstream.url });
    client = gw.client();
  });
  after(async () => {
    await gw.close();
    await upstream.close();
  });

  it('responses.create – answers as a Response, translated to chat upstream', async () => {
    const calls = upstream.calls.length;
    const r = await client.responses.create({ model: 'gpt-fake', input: 'hi there', instructions: 'Be brief.' });
    assert.equal(r.object, 'response');
    assert.match(r.id, /^resp_[0-9a-f]{48}$/);
    assert.equal(r.status, 'completed');
    assert.equal(r.output_text, 'Hello from fake-openai: hi there');
    assert.equal(r.model, 'gpt-fake');
    assert.equal(r.usage?.input_tokens, 11);
    const sent = upstream.calls.slice(calls);
    assert.equal(sent.length, 1);
    assert.equal(sent[0]!.path, '/v1/chat/completions');
    assert.deepEqual((sent[0]!.body as { messages: unknown }).messages, [
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'hi there' },
    ]);
  });

  it('responses.stream – the typed event sequence ends with response.completed', async () => {
    const stream = client.responses.stream({ model: 'gpt-fake', input: 'stream me please' });
    const types: string[] = [];
    let text = '';
    for await (const event of stream) {
      types.push(event.type);
      if (event.type === 'response.output_text.delta') text += event.delta;
    }
    const final = await stream.finalResponse();
    assert.equal(text, 'Hello from fake-openai: stream me please');
    assert.equal(final.output_text, text);
    assert.equal(types[0], 'response.created');
    assert.equal(types[1], 'response.in_progress');
    assert.equal(types.at(-1), 'response.completed');
    assert.ok(types.includes('response.output_item.added') && types.includes('response.content_part.done'));
    assert.equal(final.usage?.input_tokens, 11);
  });

  it('stream cost – an SSE comment with the cost follows response.completed, and the SDK still reads the stream', async () => {
    const res = await fetch(`${gw.baseURL}/responses`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${APP_KEY}` },
      body: JSON.stringify({ model: 'gpt-fake', input: 'what does it cost?', stream: true }),
    });
    assert.equal(res.status, 200);
    const body = await res.text();
    assert.match(body, /\nevent: response\.completed\ndata: [^\n]+\n\n: x-gateway-cost-usd=\d+\.\d{6}\n\n$/, body.slice(-300));
    const stream = await client.responses.create({ model: 'gpt-fake', input: 'what does it cost?', stream: true });
    const types: string[] = [];
    for await (const event of stream) types.push(event.type);
    assert.equal(types.at(-1), 'response.completed');
  });

  it('function tools – a call, then the second turn with its output', async () => {
    const tools: OpenAI.Responses.Tool[] = [{ type: 'function', name: 'lookup', description: 'Look it up', parameters: { type: 'object', properties: { q: { type: 'string' } } }, strict: false }];
    const first = await client.responses.create({ model: 'gpt-fake', input: 'use tool lookup args:{"q":"weather"}', tools });
    const call = first.output.find((i) => i.type === 'function_call');
    assert.ok(call && call.type === 'function_call');
    assert.equal(call.name, 'lookup');
    assert.equal(call.arguments, '{"q":"weather"}');
    const second = await client.responses.create({
      model: 'gpt-fake',
      tools,
      input: [
        { role: 'user', content: 'use tool lookup args:{"q":"weather"}' },
        { type: 'function_call', call_id: call.call_id, name: call.name, arguments: call.arguments },
        { type: 'function_call_output', call_id: call.call_id, output: 'sunny' },
      ],
    });
    assert.equal(second.output_text, 'Hello from fake-openai: sunny');
    const body = upstream.calls.at(-1)!.body as { messages: Array<{ role: string; tool_call_id?: string }> };
    assert.deepEqual(body.messages.map((m) => m.role), ['user', 'assistant', 'tool']);
    assert.equal(body.messages[2]!.tool_call_id, call.call_id);
  });

  it('previous_response_id – continues the stored conversation', async () => {
    const first = await client.responses.create({ model: 'gpt-fake', input: 'remember the word kiwi' });
    const second = await client.responses.create({ model: 'gpt-fake', input: 'what was the word?', previous_response_id: first.id });
    assert.equal(second.previous_response_id, first.id);
    const body = upstream.calls.at(-1)!.body as { messages: Array<{ role: string; content: unknown }> };
    assert.deepEqual(body.messages, [
      { role: 'user', content: 'remember the word kiwi' },
      { role: 'assistant', content: [{ type: 'text', text: 'Hello from fake-openai: remember the word kiwi' }] },
      { role: 'user', content: 'what was the word?' },
    ]);
  });

  it('text.format json_schema – reaches the upstream as response_format', async () => {
    const schema = { type: 'object', properties: { a: { type: 'string' } }, required: ['a'], additionalProperties: false };
    await client.responses.create({ model: 'gpt-fake', input: 'json please', text: { format: { type: 'json_schema', name: 'thing', schema, strict: true } } });
    const body = upstream.calls.at(-1)!.body as { response_format: unknown };
    assert.deepEqual(body.response_format, { type: 'json_schema', json_schema: { name: 'thing', schema, strict: true } });
  });

  it('retrieve, input_items and delete – the stored response, then 404', async () => {
    const r = await client.responses.create({ model: 'gpt-fake', input: [{ role: 'user', content: [{ type: 'input_text', text: 'keep me' }] }] });
    const got = await client.responses.retrieve(r.id);
    assert.equal(got.id, r.id);
    assert.equal(got.output_text, r.output_text);
    const items = await client.responses.inputItems.list(r.id);
    assert.equal(items.data.length, 1);
    const item = items.data[0]!;
    assert.ok(item.type === 'message');
    assert.deepEqual(item.content, [{ type: 'input_text', text: 'keep me' }]);
    // Another team's key sees nothing, as if it never existed.
    await assert.rejects(gw.client(OTHER_KEY).responses.retrieve(r.id), (err: APIError) => err.status === 404);
    await client.responses.delete(r.id);
    await assert.rejects(client.responses.retrieve(r.id), (err: APIError) => err.status === 404 && (err.error as { type?: string }).type === 'invalid_request_error');
  });

  it('store: false – nothing to retrieve', async () => {
    const r = await client.responses.create({ model: 'gpt-fake', input: 'forget me', store: false });
    assert.equal((r as { store?: boolean }).store, false);
    await assert.rejects(client.responses.retrieve(r.id), (err: APIError) => err.status === 404);
  });

  it('hosted tools on a chat-only upstream – a 400 naming the tool, no upstream call', async () => {
    const calls = upstream.calls.length;
    await assert.rejects(
      client.responses.create({ model: 'gpt-fake', input: 'search', tools: [{ type: 'web_search' }] }),
      (err: APIError) => err.status === 400 && (err.error as { param?: string }).param === 'tools[0]',
    );
    assert.equal(upstream.calls.length, calls);
  });

  it('models.retrieve – a callable model, and 404 in OpenAI shape otherwise', async () => {
    const m = await client.models.retrieve('gpt-fake');
    assert.equal(m.id, 'gpt-fake');
    assert.equal(m.object, 'model');
    // beta's key may call only "fast".
    await assert.rejects(gw.client(OTHER_KEY).models.retrieve('gpt-fake'), (err: APIError) => err.status === 404 && (err.error as { code?: string }).code === 'model_not_found');
  });

  it('audit and metrics – endpoint responses and the client family', async () => {
    const r = await client.responses.create({ model: 'gpt-fake', input: 'audit me' });
    const records = await gw.auditRecords();
    const rec = records.find((x) => typeof x.bodies === 'object' && JSON.stringify(x.bodies).includes(r.id));
    assert.ok(rec, 'a record holds the response');
    assert.equal(rec.endpoint, 'responses');
    assert.equal(rec.client, 'openai-node');
    const metrics = await (await fetch(`${gw.url}/metrics`)).text();
    assert.match(metrics, /lanegate_client_requests_total\{endpoint="responses",client="openai-node"\} \d+/);
    assert.match(metrics, /lanegate_requests_total\{endpoint="responses",/);
  });
});
