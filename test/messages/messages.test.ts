import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import Anthropic from '@anthropic-ai/sdk';
import { FAKE_SIGNATURE, startFakeAnthropic, type FakeAnthropic } from '../helpers/fake-anthropic.js';
import { startFakeOpenAI, type FakeOpenAI } from '../helpers/fake-openai.js';
import { APP_KEY, defaultTestConfig, OTHER_KEY, startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { TEST_POLICIES, WITH_POLICIES } from '../policy/fixtures.js';

const CARD = '4111 1111 1111 1111';

// Anthropic list prices for claude-sonnet-4-5 (3 in, 15 out); cache rates are the defaults: read 0.1x, write 1.25x.
const MODELS = `models:
  claude-sonnet-4-5: { deployments: [{ provider: fakeanthropic, model: claude-sonnet-4-5-20250929 }] }
  claude-on-openai: { deployments: [{ provider: fakeopenai, model: gpt-4o-mini }] }
`;
const EXTRA = `
pricing:
  claude-sonnet-4-5-20250929: { input: 3, output: 15 }
budgets:
  rules:
    - { name: beta-one, scope: key, match: [beta], period: day, requests: 1 }
${WITH_POLICIES}`;

const TOOLS: Anthropic.Tool[] = [{ name: 'search', description: 'Search the docs', input_schema: { type: 'object', properties: { query: { type: 'string' } } } }];

describe('messages – the Anthropic Messages API through the gateway', () => {
  let anthropic: FakeAnthropic;
  let openai: FakeOpenAI;
  let gw: TestGateway;
  const client = (apiKey = APP_KEY, headers: Record<string, string> = {}) => new Anthropic({ apiKey, baseURL: gw.url, maxRetries: 0, defaultHeaders: headers });

  before(async () => {
    anthropic = await startFakeAnthropic();
    openai = await startFakeOpenAI();
    const urls = { anthropicUrl: anthropic.url, openaiUrl: openai.url };
    const yaml = defaultTestConfig(urls).replace('models:\n', MODELS) + EXTRA;
    gw = await startTestGateway({ ...urls, yaml, files: { 'policies/lanes.yaml': TEST_POLICIES } });
  });
  after(async () => {
    await gw.close();
    await anthropic.close();
    await openai.close();
  });

  it('messages – native to Anthropic: cache_control, system blocks and tools reach the upstream intact; cache tokens priced at their own rates', async () => {
    const system: Anthropic.TextBlockParam[] = [{ type: 'text', text: 'You answer about the docs.', cache_control: { type: 'ephemeral' } }];
    const before = anthropic.calls.length;
    const message = await client(APP_KEY, { 'anthropic-beta': 'prompt-caching-2024-07-31' }).messages.create({
      model: 'claude-sonnet-4-5',
      max_tokens: 100,
      system,
      tools: TOOLS,
      messages: [{ role: 'user', content: 'hello there' }],
    });
    assert.equal(message.type, 'message');
    assert.equal(message.model, 'claude-sonnet-4-5');
    assert.deepEqual(message.content, [{ type: 'text', text: 'Anthropic echo: hello there' }]);
    assert.equal(message.stop_reason, 'end_turn');
    assert.equal(message.usage.cache_read_input_tokens, 1000);
    assert.equal(message.usage.cache_creation_input_tokens, 200);

    assert.equal(anthropic.calls.length, before + 1);
    const call = anthropic.calls.at(-1)!;
    assert.deepEqual(call.body.system, system);
    assert.deepEqual(call.body.tools, TOOLS);
    assert.equal(call.body.model, 'claude-sonnet-4-5-20250929');
    assert.equal(call.headers['anthropic-beta'], 'prompt-caching-2024-07-31');
    assert.notEqual(call.headers['x-api-key'], APP_KEY, 'the gateway key never reaches the upstream');

    const record = (await gw.auditRecords()).find((r) => r.endpoint === 'messages' && (r.usage as { cache_read_tokens?: number } | null)?.cache_read_tokens === 1000)!;
    assert.ok(record, JSON.stringify((await gw.auditRecords()).map((r) => [r.endpoint, r.usage, r.error_code])));
    assert.deepEqual(record.api, { shape: 'anthropic', upstream: 'native' });
    const usage = record.usage as { prompt_tokens: number; completion_tokens: number; cache_read_tokens: number; cache_write_tokens: number };
    assert.equal(usage.cache_write_tokens, 200);
    const uncached = usage.prompt_tokens - 1200;
    // nano-USD: tokens × USD per million × 1000.
    const expected = Math.round((uncached * 3 + 1000 * 0.3 + 200 * 3.75 + usage.completion_tokens * 15) * 1000);
    assert.equal((record.cost as { nano_usd: number }).nano_usd, expected);
    const metrics = await (await fetch(`${gw.url}/metrics`)).text();
    assert.match(metrics, /lanegate_tokens_total\{direction="cache_read",model="claude-sonnet-4-5"[^}]*\} 1000/);
  });

  it('messages – messages.stream to Anthropic with a tool: tool_use comes back as Anthropic events', async () => {
    const stream = client().messages.stream({ model: 'claude-sonnet-4-5', max_tokens: 100, system: 'Use tools.', tools: TOOLS, messages: [{ role: 'user', content: 'please use tool now' }] });
    const events: string[] = [];
    stream.on('streamEvent', (e) => events.push(e.type));
    const final = await stream.finalMessage();
    assert.equal(final.stop_reason, 'tool_use');
    const block = final.content.find((b) => b.type === 'tool_use');
    assert.ok(block && block.type === 'tool_use');
    assert.equal(block.name, 'search');
    assert.deepEqual(block.input, { query: 'please use tool now' });
    assert.equal(events[0], 'message_start');
    assert.equal(events.at(-1), 'message_stop');
  });

  for (const model of ['claude-sonnet-4-5', 'claude-on-openai']) {
    it(`messages – stream cost: an SSE comment with the cost follows message_stop, and the SDK still reads the stream (${model})`, async () => {
      const res = await fetch(`${gw.url}/v1/messages`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-api-key': APP_KEY, 'anthropic-version': '2023-06-01' },
        body: JSON.stringify({ model, max_tokens: 50, stream: true, messages: [{ role: 'user', content: 'what does it cost?' }] }),
      });
      assert.equal(res.status, 200);
      const body = await res.text();
      assert.match(body, /\nevent: message_stop\ndata: [^\n]+\n\n: x-gateway-cost-usd=\d+\.\d{6}\n\n$/, body.slice(-300));
      const stream = client().messages.stream({ model, max_tokens: 50, messages: [{ role: 'user', content: 'what does it cost?' }] });
      const events: string[] = [];
      stream.on('streamEvent', (e) => events.push(e.type));
      const final = await stream.finalMessage();
      assert.equal(final.stop_reason, 'end_turn');
      assert.equal(events.at(-1), 'message_stop');
    });
  }

  it('messages – translated to an OpenAI chat upstream: system, tools and the answer go through chat and back', async () => {
    const before = openai.calls.length;
    const message = await client().messages.create({
      model: 'claude-on-openai',
      max_tokens: 50,
      system: [{ type: 'text', text: 'Be brief.', cache_control: { type: 'ephemeral' } }],
      tools: TOOLS,
      messages: [{ role: 'user', content: 'hi chat' }],
    });
    assert.equal(message.content[0]!.type, 'text');
    assert.match((message.content[0] as Anthropic.TextBlock).text, /Hello from fake-openai/);
    assert.equal(openai.calls.length, before + 1);
    const body = openai.calls.at(-1)!.body as { messages: Array<{ role: string; content: unknown }>; tools: Array<{ function: { name: string } }> };
    assert.deepEqual(body.messages[0], { role: 'system', content: 'Be brief.' });
    assert.equal(body.tools[0]!.function.name, 'search');
    const metrics = await (await fetch(`${gw.url}/metrics`)).text();
    assert.match(metrics, /lanegate_prompt_cache_markers_dropped_total\{provider="fakeopenai"\} 1/);
  });

  it('messages – a translated stream carries a tool call back as a tool_use block', async () => {
    openai.script({ toolCalls: [{ name: 'search', arguments: '{"query":"x"}' }] });
    const final = await client()
      .messages.stream({ model: 'claude-on-openai', max_tokens: 50, tools: TOOLS, messages: [{ role: 'user', content: 'find x' }] })
      .finalMessage();
    const block = final.content.find((b) => b.type === 'tool_use');
    assert.ok(block && block.type === 'tool_use');
    assert.deepEqual(block.input, { query: 'x' });
    assert.equal(final.stop_reason, 'tool_use');
  });

  it('messages – thinking from an Anthropic upstream comes back as thinking blocks with their signature (create and stream)', async () => {
    const params = { model: 'claude-sonnet-4-5', max_tokens: 2000, thinking: { type: 'enabled' as const, budget_tokens: 1024 }, messages: [{ role: 'user' as const, content: 'think it over' }] };
    const message = await client().messages.create(params);
    assert.deepEqual(message.content, [
      { type: 'thinking', thinking: 'Thinking about: think it over', signature: FAKE_SIGNATURE },
      { type: 'text', text: 'Anthropic echo: think it over' },
    ]);
    const stream = client().messages.stream(params);
    const final = await stream.finalMessage();
    assert.deepEqual(final.content, message.content);
    // The thinking block goes back unchanged on the next turn, as Anthropic requires.
    const next = await client().messages.create({ ...params, messages: [...params.messages, { role: 'assistant', content: final.content }, { role: 'user', content: 'and then?' }] });
    assert.equal(next.content.at(-1)?.type, 'text');
    const sent = anthropic.calls.at(-1)!.body as { messages: Array<{ content: unknown }> };
    assert.deepEqual((sent.messages[1]!.content as unknown[])[0], { type: 'thinking', thinking: 'Thinking about: think it over', signature: FAKE_SIGNATURE });
  });

  it('messages – a feature a chat upstream cannot serve is a clear 400, nothing sent', async () => {
    const before = openai.calls.length;
    const res = await fetch(`${gw.url}/v1/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': APP_KEY },
      body: JSON.stringify({ model: 'claude-on-openai', max_tokens: 50, top_k: 5, messages: [{ role: 'user', content: 'hi' }] }),
    });
    assert.equal(res.status, 400);
    const body = (await res.json()) as { type: string; error: { type: string; message: string; param: string } };
    assert.equal(body.error.type, 'invalid_request_error');
    assert.equal(body.error.param, 'top_k');
    assert.match(body.error.message, /top_k/);
    assert.equal(openai.calls.length, before);
  });

  it('messages – what only Anthropic serves (top_k, thinking) goes natively to an Anthropic upstream', async () => {
    const res = await fetch(`${gw.url}/v1/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': APP_KEY },
      body: JSON.stringify({ model: 'claude-sonnet-4-5', max_tokens: 2000, top_k: 5, thinking: { type: 'enabled', budget_tokens: 1024 }, messages: [{ role: 'user', content: 'hi' }] }),
    });
    assert.equal(res.status, 200);
    const call = anthropic.calls.at(-1)!;
    assert.equal(call.body.top_k, 5);
    assert.deepEqual(call.body.thinking, { type: 'enabled', budget_tokens: 1024 });
  });

  it('messages – a card number in a system block escalates the lane (and is redacted there)', async () => {
    const { data, response } = await client(APP_KEY, { 'x-gateway-meta-purpose': 'support' })
      .messages.create({ model: 'fast', max_tokens: 50, system: [{ type: 'text', text: `The customer card is ${CARD}.` }], messages: [{ role: 'user', content: 'hello' }] })
      .withResponse();
    assert.equal(response.headers.get('x-gateway-lane'), 'red');
    assert.equal(data.type, 'message');
  });

  it('messages – a denied tool is refused in Anthropic shape, nothing sent upstream', async () => {
    const before = anthropic.calls.length;
    await assert.rejects(
      client().messages.create({
        model: 'claude-sonnet-4-5',
        max_tokens: 50,
        tools: [{ name: 'shell', input_schema: { type: 'object' } }],
        messages: [{ role: 'user', content: 'run it' }],
      }),
      (err: unknown) => err instanceof Anthropic.PermissionDeniedError && (err.error as { error: { type: string } }).error.type === 'permission_error',
    );
    assert.equal(anthropic.calls.length, before);
  });

  it('messages – a budget refusal comes in Anthropic error shape and the SDK raises its error class', async () => {
    const beta = client(OTHER_KEY);
    await beta.messages.create({ model: 'fast', max_tokens: 20, messages: [{ role: 'user', content: 'one' }] });
    await assert.rejects(beta.messages.create({ model: 'fast', max_tokens: 20, messages: [{ role: 'user', content: 'two' }] }), (err: unknown) => {
      assert.ok(err instanceof Anthropic.RateLimitError);
      const body = err.error as { type: string; error: { type: string; code: string } };
      assert.equal(body.type, 'error');
      assert.equal(body.error.type, 'billing_error');
      assert.equal(body.error.code, 'budget_exceeded');
      return true;
    });
  });

  it('messages – a stream cut by the upstream ends with an Anthropic error event', async () => {
    anthropic.script({ breakStreamAfterEvents: 4 });
    const res = await fetch(`${gw.url}/v1/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': APP_KEY, 'anthropic-version': '2023-06-01' },
      body: JSON.stringify({ model: 'claude-sonnet-4-5', max_tokens: 50, stream: true, messages: [{ role: 'user', content: 'a long story please' }] }),
    });
    assert.equal(res.status, 200);
    const text = await res.text();
    const events = [...text.matchAll(/^event: (\S+)$/gm)].map((m) => m[1]);
    assert.deepEqual(events.slice(0, 2), ['message_start', 'ping']);
    assert.equal(events.at(-1), 'error');
    assert.ok(!events.includes('message_stop'));
    const last = JSON.parse(text.trim().split('\n').at(-1)!.slice('data: '.length)) as { type: string; error: { type: string } };
    assert.equal(last.type, 'error');
    assert.ok(['api_error', 'overloaded_error'].includes(last.error.type), last.error.type);
  });

  it('messages – a bad key is 401 authentication_error in Anthropic shape', async () => {
    const before = anthropic.calls.length;
    await assert.rejects(client('sk-not-a-key').messages.create({ model: 'claude-sonnet-4-5', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] }), (err: unknown) => {
      assert.ok(err instanceof Anthropic.AuthenticationError);
      assert.deepEqual((err.error as { error: { type: string } }).error.type, 'authentication_error');
      return true;
    });
    const res = await fetch(`${gw.url}/v1/messages`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: 'Bearer sk-wrong' }, body: '{}' });
    assert.equal(res.status, 401);
    const body = (await res.json()) as { type: string; error: { type: string } };
    assert.equal(body.type, 'error');
    assert.equal(body.error.type, 'authentication_error');
    assert.equal(anthropic.calls.length, before);
  });

  it('messages – count_tokens to an Anthropic model is the upstream own count of the request', async () => {
    const before = anthropic.calls.length;
    const counted = await client().messages.countTokens({ model: 'claude-sonnet-4-5', system: 'Be brief.', messages: [{ role: 'user', content: 'count these four' }] });
    assert.equal(counted.input_tokens, 900 + 5, JSON.stringify(anthropic.calls.at(-1)));
    assert.equal(anthropic.calls.length, before + 1);
    const call = anthropic.calls.at(-1)!;
    assert.equal(call.path, '/v1/messages/count_tokens');
    assert.equal(call.body.model, 'claude-sonnet-4-5-20250929');
  });

  it('messages – count_tokens answers with an estimate; a Bearer gateway key works too', async () => {
    const res = await fetch(`${gw.url}/v1/messages/count_tokens`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${APP_KEY}` },
      body: JSON.stringify({ model: 'claude-on-openai', system: 'Be brief.', messages: [{ role: 'user', content: 'how many tokens is this' }] }),
    });
    assert.equal(res.status, 200);
    const body = (await res.json()) as { input_tokens: number };
    assert.ok(body.input_tokens > 5 && body.input_tokens < 40, String(body.input_tokens));
  });
});

// A lane that redacts email addresses and may use Anthropic: the native request is redacted as the chat form is.
const REDACTING_POLICIES = `
default_lane: green
tools:
  search: {}
lanes:
  green:
    rank: 10
    deployments: ["*"]
    detectors:
      email: redact
    restore_redactions: true
`;

describe('messages – redaction on the native path', () => {
  let anthropic: FakeAnthropic;
  let gw: TestGateway;
  before(async () => {
    anthropic = await startFakeAnthropic();
    const yaml = defaultTestConfig({ anthropicUrl: anthropic.url }).replace('models:\n', MODELS) + WITH_POLICIES;
    gw = await startTestGateway({ yaml, files: { 'policies/lanes.yaml': REDACTING_POLICIES } });
  });
  after(async () => {
    await gw.close();
    await anthropic.close();
  });

  it('messages – an email in a cached system block and a message is redacted before Anthropic sees it, the marker kept, and restored in the answer', async () => {
    const message = await new Anthropic({ apiKey: APP_KEY, baseURL: gw.url, maxRetries: 0 }).messages.create({
      model: 'claude-sonnet-4-5',
      max_tokens: 100,
      system: [{ type: 'text', text: 'Customer: jane@example.com', cache_control: { type: 'ephemeral' } }],
      messages: [{ role: 'user', content: [{ type: 'text', text: 'write to jane@example.com' }] }],
    });
    const sent = JSON.stringify(anthropic.calls.at(-1)!.body);
    assert.ok(!sent.includes('jane@example.com'), sent);
    const body = anthropic.calls.at(-1)!.body as { system: Array<{ text: string; cache_control?: unknown }> };
    assert.match(body.system[0]!.text, /^Customer: \[EMAIL_1\]$/);
    assert.deepEqual(body.system[0]!.cache_control, { type: 'ephemeral' });
    // The fake echoes the (redacted) user text; the gateway restores it for the app.
    assert.deepEqual(message.content, [{ type: 'text', text: 'Anthropic echo: write to jane@example.com' }]);
  });
});
