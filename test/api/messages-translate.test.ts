import assert from 'node:assert/strict';
import { test } from 'node:test';
import Anthropic from '@anthropic-ai/sdk';
import { GatewayError } from '../../src/errors.js';
import { countMessagesTokens } from '../../src/api/messages/count-tokens.js';
import { anthropicErrorBody } from '../../src/api/messages/errors.js';
import { parseCountTokensRequest, parseMessagesRequest } from '../../src/api/messages/parse.js';
import { chatToMessage } from '../../src/api/messages/reply.js';
import { messagesToChat } from '../../src/api/messages/to-chat.js';
import { startScriptedServer } from '../helpers/scripted-server.js';

function invalid(body: unknown): GatewayError {
  try {
    parseMessagesRequest(body);
  } catch (err) {
    assert.ok(err instanceof GatewayError);
    return err;
  }
  assert.fail('expected the request to be refused');
}

const ok = { model: 'claude-test', max_tokens: 100, messages: [{ role: 'user', content: 'hi' }] };

test('messages schema – errors name the field', () => {
  assert.equal(invalid({ model: 'm', messages: ok.messages }).param, 'max_tokens');
  assert.match(invalid({ model: 'm', messages: ok.messages }).message, /max_tokens is required/);
  assert.equal(invalid({ ...ok, messages: [{ role: 'user', content: [{ type: 'tool_result' }] }] }).param, 'messages[0].content[0].tool_use_id');
  assert.equal(invalid({ ...ok, messages: [{ role: 'user', content: [{ type: 'image', source: { type: 'base64', media_type: 'image/bmp', data: 'x' } }] }] }).param, 'messages[0].content[0].source.media_type');
  assert.equal(invalid({ ...ok, temperature: 1.5 }).param, 'temperature');
  assert.equal(invalid({ ...ok, tool_choice: { type: 'tool' } }).param, 'tool_choice.name');
  assert.equal(invalid({ ...ok, thinking: { type: 'enabled', budget_tokens: 10 } }).param, 'thinking.budget_tokens');
  assert.equal(invalid({ ...ok, tools: [{ name: 'f' }] }).param, 'tools[0].input_schema');
  assert.equal(invalid({ ...ok, system: 5 }).param, 'system');
});

test('messages to chat – system blocks, tools, tool turns, images; cache markers counted', () => {
  const request = parseMessagesRequest({
    model: 'claude-test',
    max_tokens: 300,
    system: [{ type: 'text', text: 'You are terse.', cache_control: { type: 'ephemeral' } }, { type: 'text', text: 'Use tools.' }],
    messages: [
      { role: 'user', content: [{ type: 'text', text: 'Weather in Oslo?' }, { type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'AAAA' } }] },
      {
        role: 'assistant',
        content: [
          { type: 'thinking', thinking: 'hmm', signature: 'sig' },
          { type: 'text', text: 'Checking.' },
          { type: 'tool_use', id: 'toolu_1', name: 'weather', input: { city: 'Oslo' } },
        ],
      },
      {
        role: 'user',
        content: [
          { type: 'tool_result', tool_use_id: 'toolu_1', content: [{ type: 'text', text: 'rain' }], cache_control: { type: 'ephemeral' } },
          { type: 'text', text: 'And tomorrow?' },
        ],
      },
    ],
    tools: [{ name: 'weather', description: 'Weather', input_schema: { type: 'object', properties: { city: { type: 'string' } } }, cache_control: { type: 'ephemeral' } }],
    tool_choice: { type: 'any', disable_parallel_tool_use: true },
    stop_sequences: ['END'],
    metadata: { user_id: 'u-7' },
    thinking: { type: 'enabled', budget_tokens: 2048 },
    temperature: 0.2,
    top_p: 0.8,
    stream: true,
  });
  const t = messagesToChat(request);
  assert.ok(t.ok);
  assert.equal(t.droppedCacheMarkers, 3);
  assert.deepEqual(t.omitted, ['messages[1].content[0]: thinking block', 'thinking: enabled']);
  const c = t.chat;
  assert.deepEqual(c.messages, [
    { role: 'system', content: 'You are terse.\n\nUse tools.' },
    { role: 'user', content: [{ type: 'text', text: 'Weather in Oslo?' }, { type: 'image_url', image_url: { url: 'data:image/png;base64,AAAA' } }] },
    { role: 'assistant', content: 'Checking.', tool_calls: [{ id: 'toolu_1', type: 'function', function: { name: 'weather', arguments: '{"city":"Oslo"}' } }] },
    { role: 'tool', tool_call_id: 'toolu_1', content: 'rain' },
    { role: 'user', content: [{ type: 'text', text: 'And tomorrow?' }] },
  ]);
  assert.deepEqual(c.tools, [{ type: 'function', function: { name: 'weather', description: 'Weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } } }]);
  assert.equal(c.tool_choice, 'required');
  assert.equal(c.parallel_tool_calls, false);
  assert.deepEqual(c.stop, ['END']);
  assert.equal(c.user, 'u-7');
  assert.equal(c.max_tokens, 300);
  assert.equal(c.temperature, 0.2);
  assert.equal(c.top_p, 0.8);
  assert.deepEqual(c.stream_options, { include_usage: true });
});

test('messages to chat – Anthropic-only features are an explicit unsupported result', () => {
  const cases: Array<[Record<string, unknown>, string, string]> = [
    [{ tools: [{ type: 'web_search_20250305', name: 'web_search' }] }, 'tools[0]', 'tool:web_search_20250305'],
    [{ top_k: 5 }, 'top_k', 'top_k'],
    [{ stop_sequences: ['a', 'b', 'c', 'd', 'e'] }, 'stop_sequences', 'stop_sequences:many'],
    [{ messages: [{ role: 'user', content: [{ type: 'document', source: { type: 'text', data: 'x' } }] }] }, 'messages[0].content[0].type', 'block:document'],
  ];
  for (const [extra, param, feature] of cases) {
    const t = messagesToChat(parseMessagesRequest({ ...ok, ...extra }));
    assert.equal(t.ok, false, JSON.stringify(extra));
    if (!t.ok) assert.deepEqual([t.unsupported.param, t.unsupported.feature], [param, feature]);
  }
});

test('chat reply to Message – the Anthropic SDK reads text, tool_use and usage', async (t) => {
  const message = chatToMessage(
    {
      id: 'c',
      object: 'chat.completion',
      created: 1,
      model: 'up',
      choices: [{ index: 0, message: { role: 'assistant', content: 'Checking.', tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'weather', arguments: '{"city":"Oslo"}' } }] }, finish_reason: 'tool_calls' }],
      usage: { prompt_tokens: 30, completion_tokens: 8, total_tokens: 38, prompt_tokens_details: { cached_tokens: 10 } },
    },
    { model: 'claude-test' },
  );
  const server = await startScriptedServer(() => ({ body: JSON.stringify(message) }));
  t.after(() => server.close());
  const client = new Anthropic({ apiKey: 'k', baseURL: server.url, maxRetries: 0 });
  const m = await client.messages.create({ model: 'claude-test', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] });
  assert.equal(m.stop_reason, 'tool_use');
  assert.deepEqual(m.content, [
    { type: 'text', text: 'Checking.' },
    { type: 'tool_use', id: 'call_1', name: 'weather', input: { city: 'Oslo' } },
  ]);
  assert.deepEqual(m.usage, { input_tokens: 20, output_tokens: 8, cache_creation_input_tokens: 0, cache_read_input_tokens: 10 });
});

test('anthropic errors – the SDK raises its own classes from the gateway errors', async (t) => {
  const errors = [
    new GatewayError('invalid_request', 'bad field', { param: 'max_tokens' }),
    new GatewayError('invalid_api_key', 'bad key'),
    new GatewayError('lane_violation', 'not in this lane'),
    new GatewayError('model_not_found', 'no such model'),
    new GatewayError('rate_limited', 'slow down'),
    new GatewayError('budget_exceeded', 'out of budget'),
    new GatewayError('upstream_unavailable', 'down'),
  ];
  let next = 0;
  const server = await startScriptedServer(() => {
    const e = errors[next++]!;
    return { status: e.status, body: JSON.stringify(anthropicErrorBody(e, 'req_1')) };
  });
  t.after(() => server.close());
  const client = new Anthropic({ apiKey: 'k', baseURL: server.url, maxRetries: 0 });
  const expected: Array<[new (...args: never[]) => Error, string]> = [
    [Anthropic.BadRequestError, 'invalid_request_error'],
    [Anthropic.AuthenticationError, 'authentication_error'],
    [Anthropic.PermissionDeniedError, 'permission_error'],
    [Anthropic.NotFoundError, 'not_found_error'],
    [Anthropic.RateLimitError, 'rate_limit_error'],
    [Anthropic.RateLimitError, 'billing_error'],
    [Anthropic.InternalServerError, 'overloaded_error'],
  ];
  for (const [cls, type] of expected) {
    await assert.rejects(client.messages.create({ model: 'm', max_tokens: 1, messages: [{ role: 'user', content: 'x' }] }), (err: unknown) => {
      assert.ok(err instanceof cls, `${type}: ${String(err)}`);
      const body = (err as { error?: { type?: string; error?: { type?: string } } }).error;
      assert.equal(body?.type, 'error');
      assert.equal(body?.error?.type, type);
      return true;
    });
  }
});

test('count_tokens – estimates a request for a non-Anthropic upstream, tools included; a native counter wins', async () => {
  const request = parseCountTokensRequest({ model: 'm', messages: [{ role: 'user', content: 'hello there' }] });
  const plain = await countMessagesTokens(request, { signal: AbortSignal.timeout(10_000) });
  assert.ok(plain.input_tokens > 2 && plain.input_tokens < 20, String(plain.input_tokens));
  const withTools = await countMessagesTokens(
    parseCountTokensRequest({ model: 'm', messages: [{ role: 'user', content: 'hello there' }], tools: [{ name: 'weather', input_schema: { type: 'object' } }] }),
    { signal: AbortSignal.timeout(10_000) },
  );
  assert.ok(withTools.input_tokens > plain.input_tokens);
  assert.deepEqual(await countMessagesTokens(request, { native: async () => 42, signal: AbortSignal.timeout(10_000) }), { input_tokens: 42 });
});
