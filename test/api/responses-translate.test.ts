import assert from 'node:assert/strict';
import { test } from 'node:test';
import OpenAI from 'openai';
import { GatewayError } from '../../src/errors.js';
import { parseResponsesRequest } from '../../src/api/responses/parse.js';
import { chatToResponse, responsesUsage } from '../../src/api/responses/reply.js';
import { responsesToChat, unsupportedError } from '../../src/api/responses/to-chat.js';
import type { ChatCompletion } from '../../src/api/schemas.js';
import { startScriptedServer } from '../helpers/scripted-server.js';

function invalid(body: unknown): GatewayError {
  try {
    parseResponsesRequest(body);
  } catch (err) {
    assert.ok(err instanceof GatewayError);
    return err;
  }
  assert.fail('expected the request to be refused');
}

test('responses schema – errors name the field of a bad input item', () => {
  const e1 = invalid({ model: 'm', input: [{ type: 'message', role: 'user', content: 'hi' }, { type: 'function_call', name: 'f', arguments: '{}' }] });
  assert.equal(e1.status, 400);
  assert.equal(e1.param, 'input[1].call_id');
  const e2 = invalid({ model: 'm', input: [{ role: 'robot', content: 'hi' }] });
  assert.equal(e2.param, 'input[0].role');
  const e3 = invalid({ model: 'm', input: [{ role: 'user', content: [{ type: 'input_text' }] }] });
  assert.equal(e3.param, 'input[0].content[0].text');
  assert.equal(invalid({ model: 'm', input: 'x', temperature: 3 }).param, 'temperature');
  assert.equal(invalid({ model: 'm', input: 'x', tools: [{ type: 'function', name: 'has space' }] }).param, 'tools[0].name');
  assert.equal(invalid({ model: 'm', input: 'x', text: { format: { type: 'json_schema', schema: {} } } }).param, 'text.format.name');
  assert.equal(invalid({ model: 'm', input: 'x', text: { format: { type: 'xml' } } }).param, 'text.format.type');
  assert.equal(invalid({ model: 'm' }).param, 'input');
  assert.equal(invalid({ model: 'm', input: 'x', metadata: Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`k${i}`, 'v'])) }).param, 'metadata');
  assert.equal(invalid([]).param, null);
});

test('responses to chat – items, instructions, tools, format and limits', () => {
  const request = parseResponsesRequest({
    model: 'gpt-test',
    instructions: 'Be brief.',
    input: [
      { role: 'user', content: [{ type: 'input_text', text: 'weather?' }, { type: 'input_image', image_url: 'https://x.test/a.png', detail: 'low' }] },
      { type: 'function_call', call_id: 'c1', name: 'weather', arguments: '{"city":"Oslo"}' },
      { type: 'function_call', call_id: 'c2', name: 'weather', arguments: '{"city":"Rome"}' },
      { type: 'function_call_output', call_id: 'c1', output: 'rain' },
      { type: 'function_call_output', call_id: 'c2', output: 'sun' },
      { type: 'reasoning', id: 'rs_1', summary: [] },
    ],
    tools: [{ type: 'function', name: 'weather', description: 'Weather', parameters: { type: 'object' }, strict: true }],
    tool_choice: { type: 'function', name: 'weather' },
    parallel_tool_calls: false,
    text: { format: { type: 'json_schema', name: 'answer', schema: { type: 'object' }, strict: true } },
    max_output_tokens: 100,
    temperature: 0.5,
    top_p: 0.9,
    reasoning: { effort: 'low' },
    metadata: { app: 'x' },
    user: 'u1',
    include: ['message.output_text.logprobs'],
    stream: true,
    store: true,
  });
  const t = responsesToChat(request, {
    previous: [
      { role: 'user', content: 'earlier' },
      { type: 'message', role: 'assistant', content: [{ type: 'output_text', text: 'earlier answer' }] },
    ],
  });
  assert.ok(t.ok);
  assert.deepEqual(t.omitted, ['input[5]: reasoning item']);
  const c = t.chat;
  assert.deepEqual(c.messages, [
    { role: 'system', content: 'Be brief.' },
    { role: 'user', content: 'earlier' },
    { role: 'assistant', content: [{ type: 'text', text: 'earlier answer' }] },
    { role: 'user', content: [{ type: 'text', text: 'weather?' }, { type: 'image_url', image_url: { url: 'https://x.test/a.png', detail: 'low' } }] },
    {
      role: 'assistant',
      content: null,
      tool_calls: [
        { id: 'c1', type: 'function', function: { name: 'weather', arguments: '{"city":"Oslo"}' } },
        { id: 'c2', type: 'function', function: { name: 'weather', arguments: '{"city":"Rome"}' } },
      ],
    },
    { role: 'tool', tool_call_id: 'c1', content: 'rain' },
    { role: 'tool', tool_call_id: 'c2', content: 'sun' },
  ]);
  assert.deepEqual(c.tools, [{ type: 'function', function: { name: 'weather', description: 'Weather', parameters: { type: 'object' }, strict: true } }]);
  assert.deepEqual(c.tool_choice, { type: 'function', function: { name: 'weather' } });
  assert.equal(c.parallel_tool_calls, false);
  assert.deepEqual(c.response_format, { type: 'json_schema', json_schema: { name: 'answer', schema: { type: 'object' }, strict: true } });
  assert.equal(c.max_completion_tokens, 100);
  assert.equal(c.temperature, 0.5);
  assert.equal(c.top_p, 0.9);
  assert.equal(c.reasoning_effort, 'low');
  assert.deepEqual(c.metadata, { app: 'x' });
  assert.equal(c.user, 'u1');
  assert.equal(c.logprobs, true);
  assert.equal(c.stream, true);
  assert.deepEqual(c.stream_options, { include_usage: true });
  assert.equal(c.store, undefined, 'storing is the gateway\'s business, never the chat upstream\'s');
});

test('responses to chat – a string input is one user message', () => {
  const t = responsesToChat(parseResponsesRequest({ model: 'm', input: 'hello', text: { format: { type: 'json_object' } } }));
  assert.ok(t.ok);
  assert.deepEqual(t.chat.messages, [{ role: 'user', content: 'hello' }]);
  assert.deepEqual(t.chat.response_format, { type: 'json_object' });
  assert.equal(t.chat.stream, undefined);
});

test('responses to chat – what a chat upstream cannot serve is an explicit unsupported result', () => {
  const cases: Array<[Record<string, unknown>, string, string]> = [
    [{ tools: [{ type: 'function', name: 'f' }, { type: 'web_search' }] }, 'tools[1]', 'tool:web_search'],
    [{ tool_choice: { type: 'file_search' } }, 'tool_choice', 'tool_choice:file_search'],
    [{ input: [{ type: 'item_reference', id: 'msg_1' }] }, 'input[0].type', 'item_reference'],
    [{ input: [{ type: 'web_search_call', id: 'ws_1' }] }, 'input[0].type', 'item:web_search_call'],
    [{ input: [{ role: 'user', content: [{ type: 'input_file', file_id: 'f1' }] }] }, 'input[0].content[0].type', 'part:input_file'],
    [{ input: [{ role: 'user', content: [{ type: 'input_image', file_id: 'f1' }] }] }, 'input[0].content[0].file_id', 'input_image:file_id'],
    [{ truncation: 'auto' }, 'truncation', 'truncation:auto'],
    [{ background: true }, 'background', 'background'],
    [{ reasoning: { summary: 'auto' } }, 'reasoning.summary', 'reasoning.summary'],
  ];
  for (const [extra, param, feature] of cases) {
    const t = responsesToChat(parseResponsesRequest({ model: 'm', input: 'x', ...extra }));
    assert.equal(t.ok, false, JSON.stringify(extra));
    if (t.ok) continue;
    assert.equal(t.unsupported.param, param);
    assert.equal(t.unsupported.feature, feature);
    const err = unsupportedError(t.unsupported);
    assert.equal(err.status, 400);
    assert.equal(err.toJSON().error.param, param);
  }
});

const completion: ChatCompletion = {
  id: 'chatcmpl-1',
  object: 'chat.completion',
  created: 1,
  model: 'upstream-model',
  choices: [
    {
      index: 0,
      message: { role: 'assistant', content: 'Calling.', tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'weather', arguments: '{"city":"Oslo"}' } }] },
      finish_reason: 'tool_calls',
    },
  ],
  usage: { prompt_tokens: 20, completion_tokens: 7, total_tokens: 27, prompt_tokens_details: { cached_tokens: 5 }, completion_tokens_details: { reasoning_tokens: 3 } },
};

test('chat reply to Response – the openai SDK reads output text, function calls and usage', async (t) => {
  const request = parseResponsesRequest({ model: 'gpt-test', input: 'hi', tools: [{ type: 'function', name: 'weather', parameters: { type: 'object' } }] });
  const reply = chatToResponse(completion, { id: 'resp_abc', createdAt: 1_700_000_000, model: 'gpt-test', request });
  const server = await startScriptedServer(() => ({ body: JSON.stringify(reply) }));
  t.after(() => server.close());
  const client = new OpenAI({ apiKey: 'k', baseURL: `${server.url}/v1`, maxRetries: 0 });
  const r = await client.responses.create({ model: 'gpt-test', input: 'hi' });
  assert.equal(r.id, 'resp_abc');
  assert.equal(r.status, 'completed');
  assert.equal(r.output_text, 'Calling.');
  assert.equal(r.model, 'gpt-test');
  const call = r.output.find((o) => o.type === 'function_call');
  assert.ok(call && call.type === 'function_call');
  assert.equal(call.call_id, 'call_1');
  assert.equal(call.name, 'weather');
  assert.deepEqual(JSON.parse(call.arguments), { city: 'Oslo' });
  assert.match(call.id ?? '', /^fc_[0-9a-f]{48}$/);
  assert.deepEqual(r.usage, {
    input_tokens: 20,
    input_tokens_details: { cached_tokens: 5, cache_write_tokens: 0 },
    output_tokens: 7,
    output_tokens_details: { reasoning_tokens: 3 },
    total_tokens: 27,
  });
});

test('chat reply to Response – a reply cut by the token limit is incomplete', () => {
  const request = parseResponsesRequest({ model: 'm', input: 'hi' });
  const cut: ChatCompletion = { ...completion, choices: [{ index: 0, message: { role: 'assistant', content: 'half' }, finish_reason: 'length' }] };
  const r = chatToResponse(cut, { id: 'resp_1', createdAt: 1, model: 'm', request });
  assert.equal(r.status, 'incomplete');
  assert.deepEqual(r.incomplete_details, { reason: 'max_output_tokens' });
  assert.equal(r.output[0]?.status, 'incomplete');
  assert.deepEqual(responsesUsage(undefined).input_tokens_details, { cached_tokens: 0, cache_write_tokens: 0 });
});
