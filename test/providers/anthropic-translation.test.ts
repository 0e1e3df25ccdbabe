import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { chatRequestSchema, type ChatChunk } from '../../src/api/schemas.js';
import { providerSchema } from '../../src/config/schema.js';
import { GatewayError } from '../../src/errors.js';
import { createHttpClients, type HttpClients } from '../../src/providers/http.js';
import { CancelToken } from '../../src/providers/cancel.js';
import { createAnthropicAdapter, type AnthropicProviderConfig } from '../../src/providers/anthropic/index.js';
import { buildMessagesBody, buildMessagesRequest } from '../../src/providers/anthropic/request.js';
import { finishReason, readMessage } from '../../src/providers/anthropic/response.js';
import { readMessageStream } from '../../src/providers/anthropic/stream.js';
import type { Deployment } from '../../src/providers/types.js';
import { startFakeAnthropic, type FakeAnthropic } from '../helpers/fake-anthropic.js';

const SECRET = 'sk-ant-test-secret-DO-NOT-LEAK';

function providerConfig(baseUrl: string, apiKey = SECRET): AnthropicProviderConfig {
  // Parsed through the config schema so every default is the real one.
  return providerSchema.parse({
    type: 'anthropic',
    base_url: baseUrl,
    api_key: apiKey,
    timeouts: { connect_ms: 2000, first_byte_ms: 5000, total_ms: 10000 },
    connections: 8,
  }) as AnthropicProviderConfig;
}

function deploymentOf(provider: AnthropicProviderConfig, params: Record<string, unknown> = {}): Deployment {
  const { timeouts, retry, breaker, rate_limit_cooldown: rateLimitCooldown, response_limits: responseLimits } = provider;
  return { id: 'claude/claude-test', providerName: 'claude', provider, model: 'claude-test', params, weight: 1, timeouts, retry, breaker, rateLimitCooldown, responseLimits };
}

const dep = deploymentOf(providerConfig('https://api.anthropic.com'));
const chat = (body: Record<string, unknown>) => chatRequestSchema.parse({ model: 'alias', ...body });
const user = (content: string) => ({ role: 'user', content });
const weather = { type: 'function', function: { name: 'get_weather', description: 'Weather by city', parameters: { type: 'object', properties: { city: { type: 'string' } } } } };

async function collect(stream: AsyncIterable<ChatChunk>): Promise<ChatChunk[]> {
  const out: ChatChunk[] = [];
  for await (const c of stream) out.push(c);
  return out;
}

const isCode = (code: string) => (err: unknown) => err instanceof GatewayError && err.code === code;

describe('anthropic request translation', () => {
  it('buildMessagesBody – hoists system prompts and merges tool results into one alternating user turn', () => {
    const body = buildMessagesBody(
      chat({
        messages: [
          { role: 'system', content: 'Be brief.' },
          { role: 'developer', content: [{ type: 'text', text: 'Use metric.' }] },
          user('Weather in Paris and Rome?'),
          { role: 'assistant', content: 'Checking.', tool_calls: [
            { id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } },
            { id: 'call_2', type: 'function', function: { name: 'get_weather', arguments: '' } },
          ] },
          { role: 'tool', tool_call_id: 'call_1', content: '18C' },
          { role: 'tool', tool_call_id: 'call_2', content: [{ type: 'text', text: '22C' }] },
          user('Thanks'),
        ],
      }),
      dep,
      false,
    );
    assert.deepEqual(body, {
      model: 'claude-test',
      max_tokens: 4096,
      system: 'Be brief.\n\nUse metric.',
      messages: [
        { role: 'user', content: [{ type: 'text', text: 'Weather in Paris and Rome?' }] },
        { role: 'assistant', content: [
          { type: 'text', text: 'Checking.' },
          { type: 'tool_use', id: 'call_1', name: 'get_weather', input: { city: 'Paris' } },
          { type: 'tool_use', id: 'call_2', name: 'get_weather', input: {} },
        ] },
        { role: 'user', content: [
          { type: 'tool_result', tool_use_id: 'call_1', content: '18C' },
          { type: 'tool_result', tool_use_id: 'call_2', content: [{ type: 'text', text: '22C' }] },
          { type: 'text', text: 'Thanks' },
        ] },
      ],
    });
  });

  it('buildMessagesBody – maps parameters and drops fields Anthropic would reject', () => {
    const body = buildMessagesBody(
      chat({
        messages: [user('hi'), user('again')],
        temperature: 1.7, top_p: 0.9, stop: 'END', user: 'user-42',
        seed: 7, presence_penalty: 0.5, response_format: { type: 'json_object' }, stream_options: { include_usage: true },
        tools: [weather, { type: 'function', function: { name: 'noop' } }], tool_choice: 'required', parallel_tool_calls: false,
      }),
      deploymentOf(dep.provider as AnthropicProviderConfig, { max_tokens: 99, top_k: 5 }),
      true,
    );
    assert.deepEqual(body, {
      model: 'claude-test',
      max_tokens: 99,
      messages: [{ role: 'user', content: [{ type: 'text', text: 'hi' }, { type: 'text', text: 'again' }] }],
      temperature: 1, top_p: 0.9, top_k: 5, stop_sequences: ['END'], metadata: { user_id: 'user-42' },
      tools: [
        { name: 'get_weather', description: 'Weather by city', input_schema: weather.function.parameters },
        { name: 'noop', input_schema: { type: 'object', properties: {} } },
      ],
      tool_choice: { type: 'any', disable_parallel_tool_use: true },
      stream: true,
    });
  });

  it('buildMessagesBody – max_completion_tokens wins, then max_tokens, then the deployment, then 4096', () => {
    const withParams = deploymentOf(dep.provider as AnthropicProviderConfig, { max_tokens: 99 });
    assert.equal(buildMessagesBody(chat({ messages: [user('x')], max_completion_tokens: 50, max_tokens: 60 }), withParams, false).max_tokens, 50);
    assert.equal(buildMessagesBody(chat({ messages: [user('x')], max_tokens: 60 }), withParams, false).max_tokens, 60);
    assert.equal(buildMessagesBody(chat({ messages: [user('x')] }), withParams, false).max_tokens, 99);
    assert.equal(buildMessagesBody(chat({ messages: [user('x')] }), dep, false).max_tokens, 4096);
  });

  it('buildMessagesBody – tool_choice maps to auto, any, tool and none; stop arrays pass through', () => {
    const choice = (tool_choice: unknown) => buildMessagesBody(chat({ messages: [user('x')], tools: [weather], tool_choice }), dep, false).tool_choice;
    assert.deepEqual(choice('auto'), { type: 'auto' });
    assert.deepEqual(choice('required'), { type: 'any' });
    assert.deepEqual(choice('none'), { type: 'none' });
    assert.deepEqual(choice({ type: 'function', function: { name: 'get_weather' } }), { type: 'tool', name: 'get_weather' });
    assert.equal(choice(undefined), undefined);
    assert.deepEqual(buildMessagesBody(chat({ messages: [user('x')], stop: ['a', 'b'] }), dep, false).stop_sequences, ['a', 'b']);
  });

  it('buildMessagesBody – data URLs become base64 image sources, http URLs url sources', () => {
    const body = buildMessagesBody(
      chat({
        messages: [{ role: 'user', content: [
          { type: 'text', text: 'Compare' },
          { type: 'image_url', image_url: { url: 'data:image/png;base64,iVBORw0KGgo=' } },
          { type: 'image_url', image_url: { url: 'https://example.com/cat.jpg', detail: 'high' } },
        ] }],
      }),
      dep,
      false,
    );
    assert.deepEqual(body.messages[0]!.content, [
      { type: 'text', text: 'Compare' },
      { type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'iVBORw0KGgo=' } },
      { type: 'image', source: { type: 'url', url: 'https://example.com/cat.jpg' } },
    ]);
  });

  it('buildMessagesBody – refuses what Anthropic cannot take, naming the parameter', () => {
    const refuses = (body: Record<string, unknown>, param: string) =>
      assert.throws(() => buildMessagesBody(chat(body), dep, false), (err: unknown) => err instanceof GatewayError && err.code === 'invalid_request' && err.param === param);
    refuses({ messages: [user('x')], n: 2 }, 'n');
    const badCall = { id: 'c1', type: 'function', function: { name: 'f', arguments: '{not json' } };
    refuses({ messages: [user('x'), { role: 'assistant', content: null, tool_calls: [badCall] }] }, 'messages[1].tool_calls[0].function.arguments');
    refuses({ messages: [user('x'), { role: 'tool', content: 'r' }] }, 'messages[1].tool_call_id');
    refuses({ messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'ftp://x/y.png' } }] }] }, 'messages[0].content[0].image_url.url');
    refuses({ messages: [{ role: 'user', content: [{ type: 'input_audio', input_audio: {} }] }] }, 'messages[0].content[0].type');
    refuses({ messages: [{ role: 'system', content: 'only a system prompt' }] }, 'messages');
  });

  it('buildMessagesRequest – posts to /v1/messages with Anthropic auth headers', () => {
    for (const base of ['https://gw.example/anthropic', 'https://gw.example/anthropic/v1/']) {
      const provider = { ...providerConfig(base), headers: { 'x-team': 'ml' } };
      const up = buildMessagesRequest(provider, chat({ messages: [user('x')] }), deploymentOf(provider), true);
      assert.equal(up.origin, 'https://gw.example');
      assert.equal(up.path, '/anthropic/v1/messages');
      assert.deepEqual(up.headers, { 'x-team': 'ml', 'content-type': 'application/json', 'anthropic-version': '2023-06-01', 'x-api-key': SECRET, accept: 'text/event-stream' });
    }
  });
});

describe('anthropic response translation', () => {
  it('readMessage – text and tool_use blocks become content and tool_calls, cached tokens count as prompt', async () => {
    const completion = await readMessage(
      'claude',
      {
        id: 'msg_1', type: 'message', model: 'claude-test-20250101',
        content: [
          { type: 'text', text: 'Let me ' },
          { type: 'text', text: 'check.' },
          { type: 'tool_use', id: 'toolu_1', name: 'get_weather', input: { city: 'Paris' } },
        ],
        stop_reason: 'tool_use',
        usage: { input_tokens: 10, output_tokens: 5, cache_read_input_tokens: 100, cache_creation_input_tokens: 20 },
      },
      chat({ messages: [user('x')] }),
    );
    assert.deepEqual([completion.id, completion.object, completion.model], ['chatcmpl-msg_1', 'chat.completion', 'claude-test-20250101']);
    const toolCall = { id: 'toolu_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } };
    const message = { role: 'assistant', content: 'Let me check.', tool_calls: [toolCall], refusal: null };
    assert.deepEqual(completion.choices, [{ index: 0, message, finish_reason: 'tool_calls', logprobs: null }]);
    // Cache writes stay visible beside reads: they are priced at their own rate.
    assert.deepEqual(completion.usage, { prompt_tokens: 130, completion_tokens: 5, total_tokens: 135, prompt_tokens_details: { cached_tokens: 100, cache_write_tokens: 20 } });
  });

  it('readMessage – no text means null content; stop reasons map to OpenAI finish reasons', async () => {
    const completion = await readMessage('claude', { id: 'm', model: 'c', content: [], stop_reason: 'max_tokens', usage: { input_tokens: 1, output_tokens: 0 } }, chat({ messages: [user('x')] }));
    assert.equal(completion.choices[0]!.message.content, null);
    assert.equal(completion.choices[0]!.finish_reason, 'length');
    const table = { end_turn: 'stop', stop_sequence: 'stop', max_tokens: 'length', tool_use: 'tool_calls', refusal: 'content_filter', something_new: 'stop' };
    for (const [from, to] of Object.entries(table)) assert.equal(finishReason(from), to, from);
    await assert.rejects(readMessage('claude', { error: 'nope' }, chat({ messages: [user('x')] })), isCode('upstream_error'));
  });
});

// One message: text with a multi-byte character, then two tool calls, as the
// real API sends them (CRLF line endings to exercise the parser).
const SSE = [
  ['message_start', { type: 'message_start', message: { id: 'msg_s', model: 'claude-test-1', usage: { input_tokens: 12, output_tokens: 1, cache_read_input_tokens: 3 } } }],
  ['content_block_start', { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } }],
  ['ping', { type: 'ping' }],
  ['content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: 'Café ☕ ' } }],
  ['content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: 'time' } }],
  ['content_block_stop', { type: 'content_block_stop', index: 0 }],
  ['content_block_start', { type: 'content_block_start', index: 1, content_block: { type: 'tool_use', id: 'toolu_a', name: 'get_weather', input: {} } }],
  ['content_block_delta', { type: 'content_block_delta', index: 1, delta: { type: 'input_json_delta', partial_json: '' } }],
  ['content_block_delta', { type: 'content_block_delta', index: 1, delta: { type: 'input_json_delta', partial_json: '{"city":' } }],
  ['content_block_delta', { type: 'content_block_delta', index: 1, delta: { type: 'input_json_delta', partial_json: '"Paris"}' } }],
  ['content_block_stop', { type: 'content_block_stop', index: 1 }],
  ['content_block_start', { type: 'content_block_start', index: 2, content_block: { type: 'tool_use', id: 'toolu_b', name: 'get_time', input: {} } }],
  ['content_block_delta', { type: 'content_block_delta', index: 2, delta: { type: 'input_json_delta', partial_json: '{}' } }],
  ['content_block_stop', { type: 'content_block_stop', index: 2 }],
  ['message_delta', { type: 'message_delta', delta: { stop_reason: 'tool_use', stop_sequence: null }, usage: { output_tokens: 42 } }],
  ['message_stop', { type: 'message_stop' }],
] as const;

function sseBytes(events: ReadonlyArray<readonly [string, unknown]>): Buffer {
  return Buffer.from(events.map(([name, data]) => `event: ${name}\r\ndata: ${JSON.stringify(data)}\r\n\r\n`).join(''));
}

async function* pieces(bytes: Buffer, size: number): AsyncGenerator<Buffer> {
  for (let i = 0; i < bytes.length; i += size) yield bytes.subarray(i, i + size);
}

describe('anthropic stream translation', () => {
  it('readMessageStream – byte splits anywhere (inside CRLF, inside UTF-8) give the same OpenAI chunks', async () => {
    const request = chat({ messages: [user('x')] });
    for (const size of [1, 5, 7, 64, 100_000]) {
      const chunks = await collect(readMessageStream('claude', pieces(sseBytes(SSE), size), request));
      assert.deepEqual(chunks[0]!.choices[0]!.delta, { role: 'assistant', content: '' }, `size ${size}`);
      assert.ok(chunks.every((c) => c.id === 'chatcmpl-msg_s' && c.object === 'chat.completion.chunk' && c.model === 'claude-test-1'));
      const deltas = chunks.flatMap((c) => c.choices.map((ch) => ch.delta));
      assert.equal(deltas.map((d) => d.content ?? '').join(''), 'Café ☕ time');
      const calls = deltas.flatMap((d) => d.tool_calls ?? []);
      assert.deepEqual(calls[0], { index: 0, id: 'toolu_a', type: 'function', function: { name: 'get_weather', arguments: '' } });
      assert.equal(calls.filter((c) => c.index === 0).map((c) => c.function?.arguments).join(''), '{"city":"Paris"}');
      assert.deepEqual(calls.filter((c) => c.index === 1).map((c) => c.id ?? c.function?.arguments), ['toolu_b', '{}']);
      assert.deepEqual(chunks.flatMap((c) => c.choices.map((ch) => ch.finish_reason)).filter(Boolean), ['tool_calls']);
      const last = chunks.at(-1)!;
      assert.deepEqual(last.choices, []);
      assert.deepEqual(last.usage, { prompt_tokens: 15, completion_tokens: 42, total_tokens: 57, prompt_tokens_details: { cached_tokens: 3 } });
    }
  });

  it('readMessageStream – error events and a missing message_stop reject with upstream codes', async () => {
    const request = chat({ messages: [user('x')] });
    const withError = (type: string) => sseBytes([SSE[0], SSE[1], ['error', { type: 'error', error: { type, message: `secret ${SECRET}` } }]]);
    const overloaded = (err: unknown) => isCode('upstream_unavailable')(err) && (err as GatewayError).upstream?.errorClass === 'protocol' && !String(err).includes(SECRET);
    await assert.rejects(collect(readMessageStream('claude', pieces(withError('overloaded_error'), 9), request)), overloaded);
    await assert.rejects(collect(readMessageStream('claude', pieces(withError('api_error'), 9), request)), isCode('upstream_error'));
    await assert.rejects(collect(readMessageStream('claude', pieces(sseBytes(SSE.slice(0, -1)), 9), request)), isCode('upstream_error'));
    await assert.rejects(collect(readMessageStream('claude', pieces(Buffer.from('data: {not json\n\n'), 9), request)), isCode('upstream_error'));
  });
});

describe('anthropic adapter over HTTP', () => {
  let upstream: FakeAnthropic;
  let clients: HttpClients;
  const signal = new CancelToken();
  before(async () => {
    upstream = await startFakeAnthropic();
    clients = createHttpClients();
  });
  after(async () => {
    await clients.close();
    await upstream.close();
  });
  const adapterFor = (apiKey = SECRET) => createAnthropicAdapter('claude', providerConfig(upstream.url, apiKey), clients);

  it('chat – answers in OpenAI shape and sends only Anthropic fields with Anthropic auth', async () => {
    const adapter = adapterFor();
    const { completion, text } = await adapter.chat(chat({ messages: [{ role: 'system', content: 'Be nice' }, user('hello there')], seed: 1 }), deploymentOf(providerConfig(upstream.url)), signal);
    assert.equal(text, undefined, 'a translated answer has no upstream text to send as it is');
    assert.equal(completion.choices[0]!.message.content, 'Anthropic echo: hello there');
    assert.equal(completion.choices[0]!.finish_reason, 'stop');
    assert.deepEqual(completion.usage, { prompt_tokens: 4, completion_tokens: 4, total_tokens: 8, prompt_tokens_details: { cached_tokens: 0 } });
    const call = upstream.calls.at(-1)!;
    const { 'x-api-key': key, 'anthropic-version': version, authorization } = call.headers;
    assert.deepEqual([call.path, key, version, authorization], ['/v1/messages', SECRET, '2023-06-01', undefined]);
    assert.deepEqual(Object.keys(call.body).sort(), ['max_tokens', 'messages', 'model', 'system']);
  });

  it('chatStream – a tool call streams as OpenAI tool_calls deltas, with a final usage chunk', async () => {
    const request = chat({ messages: [user('please use tool now')], tools: [weather], stream: true });
    const chunks = await collect(adapterFor().chatStream(request, deploymentOf(providerConfig(upstream.url)), signal));
    assert.equal(chunks[0]!.choices[0]!.delta.role, 'assistant');
    const calls = chunks.flatMap((c) => c.choices.flatMap((ch) => ch.delta.tool_calls ?? []));
    assert.equal(calls[0]!.function?.name, 'get_weather');
    assert.deepEqual(JSON.parse(calls.map((c) => c.function?.arguments ?? '').join('')), { query: 'please use tool now' });
    assert.ok(chunks.some((c) => c.choices[0]?.finish_reason === 'tool_calls'));
    assert.deepEqual(chunks.at(-1)!.choices, []);
    assert.equal(chunks.at(-1)!.usage?.prompt_tokens, 4);
    assert.equal(upstream.calls.at(-1)!.body.stream, true);
  });

  it('upstream faults – 529 is upstream_unavailable, 401 upstream_auth_failed, neither leaks the upstream body', async () => {
    const dep = deploymentOf(providerConfig(upstream.url));
    const request = chat({ messages: [user('x')] });
    const clean = (code: string) => (err: unknown) => isCode(code)(err) && !String((err as Error).message).includes('sk-ant-internal');
    upstream.script({ status: 529 });
    await assert.rejects(adapterFor().chat(request, dep, signal), clean('upstream_unavailable'));
    upstream.script({ status: 401 });
    await assert.rejects(adapterFor().chat(request, dep, signal), clean('upstream_auth_failed'));
    // No key configured: the fake's own 401, as the real API answers.
    await assert.rejects(adapterFor('').chat(request, dep, signal), isCode('upstream_auth_failed'));
    assert.equal(upstream.calls.at(-1)!.headers['x-api-key'], undefined);
    await assert.rejects(adapterFor().embed({ model: 'x', input: 'hi' }, dep, signal), isCode('invalid_request'));
  });

  it('upstream faults – a stream broken mid-way rejects after its first chunks', async () => {
    upstream.script({ breakStreamAfterEvents: 4 });
    const seen: ChatChunk[] = [];
    const consume = async () => {
      for await (const c of adapterFor().chatStream(chat({ messages: [user('hello world')] }), deploymentOf(providerConfig(upstream.url)), signal)) seen.push(c);
    };
    await assert.rejects(consume(), (err: unknown) => err instanceof GatewayError && (err.code === 'upstream_unavailable' || err.code === 'upstream_error'));
    assert.ok(seen.length >= 1, 'chunks before the break were delivered');
    assert.ok(seen.every((c) => c.choices.length > 0), 'no usage chunk, so no clean finish');
  });
});
