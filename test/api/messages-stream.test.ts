import assert from 'node:assert/strict';
import { test } from 'node:test';
import Anthropic from '@anthropic-ai/sdk';
import { GatewayError } from '../../src/errors.js';
import { chatStreamToMessages, encodeAnthropicEvent, type AnthropicStreamEvent } from '../../src/api/messages/stream.js';
import type { ChatChunk } from '../../src/api/schemas.js';
import { startScriptedServer } from '../helpers/scripted-server.js';

const base = { id: 'c1', object: 'chat.completion.chunk' as const, created: 1, model: 'up' };
const text = (content: string): ChatChunk => ({ ...base, choices: [{ index: 0, delta: { content }, finish_reason: null }] });
const call = (index: number, f: { id?: string; name?: string; args?: string }): ChatChunk => ({
  ...base,
  choices: [{ index: 0, delta: { tool_calls: [{ index, ...(f.id ? { id: f.id, type: 'function' as const } : {}), function: { ...(f.name ? { name: f.name } : {}), arguments: f.args ?? '' } }] }, finish_reason: null }],
});
const finish = (reason: string): ChatChunk => ({ ...base, choices: [{ index: 0, delta: {}, finish_reason: reason }] });
const usage: ChatChunk = { ...base, choices: [], usage: { prompt_tokens: 12, completion_tokens: 5, total_tokens: 17, prompt_tokens_details: { cached_tokens: 4 } } };

async function* chunks(list: ChatChunk[], failAt?: number): AsyncGenerator<ChatChunk> {
  for (const [i, c] of list.entries()) {
    if (i === failAt) throw new GatewayError('upstream_error', 'The upstream connection broke mid-stream.');
    yield c;
  }
}

async function collect(list: ChatChunk[], failAt?: number) {
  const s = chatStreamToMessages(chunks(list, failAt), { model: 'claude-test', id: 'msg_1', inputTokens: 12 });
  const events: AnthropicStreamEvent[] = [];
  for await (const e of s.events) events.push(e);
  return { events, outcome: s.outcome() };
}

async function sdkStream(t: import('node:test').TestContext, events: AnthropicStreamEvent[]) {
  const server = await startScriptedServer(() => ({
    body: (async function* () {
      for (const e of events) yield encodeAnthropicEvent(e);
    })(),
  }));
  t.after(() => server.close());
  const client = new Anthropic({ apiKey: 'k', baseURL: server.url, maxRetries: 0 });
  return client.messages.stream({ model: 'claude-test', max_tokens: 100, messages: [{ role: 'user', content: 'hi' }] });
}

test('messages stream – text then tool calls: Anthropic\'s event order, and MessageStream rebuilds the message', async (t) => {
  const { events, outcome } = await collect([
    text('Checking'),
    text(' now.'),
    call(0, { id: 'call_a', name: 'weather', args: '{"city":' }),
    call(0, { args: '"Oslo"}' }),
    call(1, { id: 'call_b', name: 'time', args: '{}' }),
    finish('tool_calls'),
    usage,
  ]);
  assert.deepEqual(
    events.map((e) => ('index' in e ? `${e.type}#${e.index}` : e.type)),
    [
      'message_start',
      'ping',
      'content_block_start#0',
      'content_block_delta#0',
      'content_block_delta#0',
      'content_block_stop#0',
      'content_block_start#1',
      'content_block_delta#1',
      'content_block_delta#1',
      'content_block_stop#1',
      'content_block_start#2',
      'content_block_delta#2',
      'content_block_stop#2',
      'message_delta',
      'message_stop',
    ],
  );
  assert.equal(outcome?.stopReason, 'tool_use');

  const stream = await sdkStream(t, events);
  const texts: string[] = [];
  stream.on('text', (d) => texts.push(d));
  const m = await stream.finalMessage();
  assert.deepEqual(texts, ['Checking', ' now.']);
  assert.equal(m.id, 'msg_1');
  assert.equal(m.stop_reason, 'tool_use');
  assert.deepEqual(m.content, [
    { type: 'text', text: 'Checking now.' },
    { type: 'tool_use', id: 'call_a', name: 'weather', input: { city: 'Oslo' } },
    { type: 'tool_use', id: 'call_b', name: 'time', input: {} },
  ]);
  assert.equal(m.usage.output_tokens, 5);
  assert.equal(m.usage.input_tokens, 8);
  assert.equal(m.usage.cache_read_input_tokens, 4);
});

test('messages stream – a cut answer stops with max_tokens', async (t) => {
  const { events } = await collect([text('Half'), finish('length'), usage]);
  const m = await (await sdkStream(t, events)).finalMessage();
  assert.equal(m.stop_reason, 'max_tokens');
  assert.deepEqual(m.content, [{ type: 'text', text: 'Half' }]);
});

test('messages stream – a failure after the start ends with one error event the SDK raises', async (t) => {
  const { events, outcome } = await collect([text('Hel'), text('lo'), finish('stop')], 2);
  const last = events.at(-1)!;
  assert.equal(last.type, 'error');
  assert.deepEqual('error' in last ? last.error : undefined, { type: 'api_error', message: 'The upstream connection broke mid-stream.', code: 'upstream_error' });
  assert.equal(events.filter((e) => e.type === 'error').length, 1);
  assert.ok(outcome?.error instanceof GatewayError);
  const stream = await sdkStream(t, events);
  await assert.rejects(stream.finalMessage(), (err: unknown) => err instanceof Anthropic.APIError && /broke mid-stream/.test(err.message));
});

test('messages stream – a failure before the first chunk throws before any event', async () => {
  const s = chatStreamToMessages(chunks([text('x')], 0), { model: 'm' });
  await assert.rejects(s.events[Symbol.asyncIterator]().next(), (err: unknown) => err instanceof GatewayError);
});
