import assert from 'node:assert/strict';
import { test } from 'node:test';
import OpenAI from 'openai';
import { GatewayError } from '../../src/errors.js';
import { parseResponsesRequest } from '../../src/api/responses/parse.js';
import { chatStreamToResponses } from '../../src/api/responses/stream.js';
import { encodeResponsesEvent, type ResponseStreamEvent } from '../../src/api/responses/types.js';
import type { ChatChunk } from '../../src/api/schemas.js';
import { startScriptedServer } from '../helpers/scripted-server.js';

const base = { id: 'c1', object: 'chat.completion.chunk' as const, created: 1, model: 'up' };
function text(content: string): ChatChunk {
  return { ...base, choices: [{ index: 0, delta: { content }, finish_reason: null }] };
}
function call(index: number, fields: { id?: string; name?: string; args?: string }): ChatChunk {
  return {
    ...base,
    choices: [{ index: 0, delta: { tool_calls: [{ index, ...(fields.id ? { id: fields.id, type: 'function' as const } : {}), function: { ...(fields.name ? { name: fields.name } : {}), arguments: fields.args ?? '' } }] }, finish_reason: null }],
  };
}
function finish(reason: string): ChatChunk {
  return { ...base, choices: [{ index: 0, delta: {}, finish_reason: reason }] };
}
const usage: ChatChunk = { ...base, choices: [], usage: { prompt_tokens: 9, completion_tokens: 4, total_tokens: 13, prompt_tokens_details: { cached_tokens: 2 } } };

async function* chunks(list: ChatChunk[], failAfter?: number): AsyncGenerator<ChatChunk> {
  for (const [i, c] of list.entries()) {
    if (i === failAfter) throw new GatewayError('upstream_error', 'The upstream connection broke mid-stream.');
    yield c;
  }
  if (failAfter !== undefined && failAfter >= list.length) throw new GatewayError('upstream_error', 'The upstream connection broke mid-stream.');
}

const meta = { id: 'resp_s1', createdAt: 1_700_000_000, model: 'gpt-test', request: parseResponsesRequest({ model: 'gpt-test', input: 'hi', stream: true }) };

async function collect(list: ChatChunk[], failAfter?: number) {
  const stream = chatStreamToResponses(chunks(list, failAfter), meta);
  const events: ResponseStreamEvent[] = [];
  for await (const e of stream.events) events.push(e);
  return { events, outcome: stream.outcome() };
}

/** Serves the events as SSE and reads them back with the openai SDK's `responses.stream` helper. */
async function throughSdk(t: import('node:test').TestContext, events: ResponseStreamEvent[]) {
  const server = await startScriptedServer(() => ({
    body: (async function* () {
      for (const e of events) yield encodeResponsesEvent(e);
    })(),
  }));
  t.after(() => server.close());
  const client = new OpenAI({ apiKey: 'k', baseURL: `${server.url}/v1`, maxRetries: 0 });
  return client.responses.stream({ model: 'gpt-test', input: 'hi' });
}

test('responses stream – text: the full event sequence, numbered, and the SDK rebuilds the answer', async (t) => {
  const { events, outcome } = await collect([text('Hello'), text(' world'), finish('stop'), usage]);
  assert.deepEqual(
    events.map((e) => e.type),
    [
      'response.created',
      'response.in_progress',
      'response.output_item.added',
      'response.content_part.added',
      'response.output_text.delta',
      'response.output_text.delta',
      'response.output_text.done',
      'response.content_part.done',
      'response.output_item.done',
      'response.completed',
    ],
  );
  assert.deepEqual(events.map((e) => e.sequence_number), events.map((_, i) => i));
  const created = events[0]!;
  assert.ok(created.type === 'response.created');
  assert.equal(created.response.status, 'in_progress');
  assert.deepEqual(created.response.output, []);
  assert.equal(outcome?.response.status, 'completed');
  assert.equal(outcome?.error, undefined);

  const stream = await throughSdk(t, events);
  const deltas: string[] = [];
  stream.on('response.output_text.delta', (e) => deltas.push(e.delta));
  const final = await stream.finalResponse();
  assert.deepEqual(deltas, ['Hello', ' world']);
  assert.equal(final.output_text, 'Hello world');
  assert.equal(final.id, 'resp_s1');
  assert.equal(final.status, 'completed');
  assert.equal(final.usage?.input_tokens, 9);
  assert.equal(final.usage?.input_tokens_details.cached_tokens, 2);
  assert.equal(final.usage?.total_tokens, 13);
});

test('responses stream – tool calls: one function_call item per call, argument deltas, in output order', async (t) => {
  const { events, outcome } = await collect([
    text('Checking.'),
    call(0, { id: 'call_a', name: 'weather', args: '{"city":' }),
    call(0, { args: '"Oslo"}' }),
    call(1, { id: 'call_b', name: 'time', args: '{}' }),
    finish('tool_calls'),
    usage,
  ]);
  const types = events.map((e) => e.type);
  assert.deepEqual(types.slice(-10), [
    'response.output_item.added',
    'response.function_call_arguments.delta',
    'response.function_call_arguments.delta',
    'response.output_item.added',
    'response.function_call_arguments.delta',
    'response.function_call_arguments.done',
    'response.output_item.done',
    'response.function_call_arguments.done',
    'response.output_item.done',
    'response.completed',
  ]);
  // The message closes before the first call opens.
  assert.ok(types.indexOf('response.output_item.done') < types.indexOf('response.function_call_arguments.delta'));
  const done = events.filter((e) => e.type === 'response.function_call_arguments.done');
  assert.deepEqual(done.map((e) => [e.output_index, e.name, e.arguments]), [[1, 'weather', '{"city":"Oslo"}'], [2, 'time', '{}']]);
  assert.deepEqual(outcome?.response.output.map((o) => o.type), ['message', 'function_call', 'function_call']);

  const stream = await throughSdk(t, events);
  const argDeltas: string[] = [];
  stream.on('response.function_call_arguments.delta', (e) => argDeltas.push(e.delta));
  const final = await stream.finalResponse();
  assert.equal(final.output_text, 'Checking.');
  const calls = final.output.filter((o) => o.type === 'function_call');
  assert.deepEqual(calls.map((c) => (c.type === 'function_call' ? [c.call_id, c.name, c.arguments, c.status] : [])), [
    ['call_a', 'weather', '{"city":"Oslo"}', 'completed'],
    ['call_b', 'time', '{}', 'completed'],
  ]);
  assert.deepEqual(argDeltas, ['{"city":', '"Oslo"}', '{}']);
});

test('responses stream – a reply cut by the token limit ends with response.incomplete', async (t) => {
  const { events } = await collect([text('Half'), finish('length'), usage]);
  const last = events.at(-1)!;
  assert.equal(last.type, 'response.incomplete');
  assert.ok(last.type === 'response.incomplete');
  assert.deepEqual(last.response.incomplete_details, { reason: 'max_output_tokens' });
  const final = await (await throughSdk(t, events)).finalResponse();
  assert.equal(final.status, 'incomplete');
  assert.equal(final.output_text, 'Half');
});

test('responses stream – a failure after the start ends with response.failed, then error', async (t) => {
  const { events, outcome } = await collect([text('Hel'), text('lo'), finish('stop')], 2);
  const types = events.map((e) => e.type);
  assert.deepEqual(types.slice(-6), [
    'response.output_text.delta',
    'response.output_text.done',
    'response.content_part.done',
    'response.output_item.done',
    'response.failed',
    'error',
  ]);
  const failed = events.at(-2)!;
  assert.ok(failed.type === 'response.failed');
  assert.equal(failed.response.status, 'failed');
  assert.deepEqual(failed.response.error, { code: 'server_error', message: 'The upstream connection broke mid-stream.' });
  const err = events.at(-1)!;
  assert.ok(err.type === 'error');
  assert.equal(err.code, 'upstream_error');
  assert.ok(outcome?.error instanceof GatewayError);
  assert.equal(outcome.response.status, 'failed');

  const stream = await throughSdk(t, events);
  const seen: string[] = [];
  stream.on('event', (e) => seen.push(e.type));
  // The client sees the failure, not a short answer.
  await assert.rejects(stream.finalResponse());
  assert.deepEqual(seen.slice(-2), ['response.failed', 'error']);
  assert.equal(seen[0], 'response.created');
  assert.equal(new Set(seen).size > 5, true);
});

test('responses stream – a failure before the first chunk throws before any event (the caller can still answer with a status)', async () => {
  const stream = chatStreamToResponses(chunks([text('x')], 0), meta);
  const it = stream.events[Symbol.asyncIterator]();
  await assert.rejects(it.next(), (err: unknown) => err instanceof GatewayError && err.code === 'upstream_error');
  assert.equal(stream.outcome(), undefined);
});
