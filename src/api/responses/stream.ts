// Chat chunks as the Responses API's typed event stream. Events follow
// OpenAI's order: response.created and response.in_progress, then per output
// item output_item.added, (content_part.added, output_text.delta...,
// output_text.done, content_part.done | function_call_arguments.delta...,
// function_call_arguments.done), output_item.done, and response.completed
// (response.incomplete when the answer was cut by max_output_tokens or a
// content filter). A stream that fails after it started ends with
// response.failed, then an error event.
import { toGatewayError } from '../../errors.js';
import type { ChatChunk, Usage } from '../schemas.js';
import { createItemId, finishStatus, responseSkeleton, responsesUsage, type ResponseMeta } from './reply.js';
import type { FunctionCallItem, OutputItem, OutputMessage, OutputText, ReasoningItem, ResponseObject, ResponseStreamEvent } from './types.js';

export interface StreamOutcome {
  /** The final Response, as response.completed / .incomplete / .failed carried it: what gets stored. */
  response: ResponseObject;
  /** Set when the chunk stream failed after the first event; already told to the client. */
  error?: unknown;
}

export interface ResponsesStream {
  events: AsyncIterable<ResponseStreamEvent>;
  /** Known once `events` has ended. */
  outcome(): StreamOutcome | undefined;
}

type Body = ResponseStreamEvent extends infer E ? (E extends ResponseStreamEvent ? Omit<E, 'sequence_number'> : never) : never;

interface OpenText {
  kind: 'message';
  index: number;
  item: OutputMessage;
  part?: { index: number; text: OutputText };
}

interface OpenCall {
  kind: 'call';
  index: number;
  item: FunctionCallItem;
}

/**
 * The first chunk is awaited before any event is produced: an attempt that
 * fails before its first byte (upstream 429, timeout) throws from the first
 * `next()`, so the caller can still answer with an HTTP error or fall back.
 */
export function chatStreamToResponses(chunks: AsyncIterable<ChatChunk>, meta: ResponseMeta): ResponsesStream {
  let outcome: StreamOutcome | undefined;
  async function* run(): AsyncGenerator<ResponseStreamEvent> {
    let seq = 0;
    const ev = (e: Body): ResponseStreamEvent => ({ ...e, sequence_number: seq++ }) as ResponseStreamEvent;
    const iterator = chunks[Symbol.asyncIterator]();
    const first = await iterator.next();

    const response = responseSkeleton(meta);
    const snapshot = (): ResponseObject => structuredClone(response);
    yield ev({ type: 'response.created', response: snapshot() });
    yield ev({ type: 'response.in_progress', response: snapshot() });

    const output: OutputItem[] = [];
    let message: OpenText | undefined;
    const calls = new Map<number, OpenCall>();
    let finishReason: string | null = null;
    let usage: Usage | undefined;

    function* openMessage(): Generator<ResponseStreamEvent, OpenText> {
      if (message) return message;
      const item: OutputMessage = { type: 'message', id: createItemId('msg'), status: 'in_progress', role: 'assistant', content: [] };
      message = { kind: 'message', index: output.length, item };
      output.push(item);
      yield ev({ type: 'response.output_item.added', output_index: message.index, item: structuredClone(item) });
      return message;
    }
    function* closeMessage(status: 'completed' | 'incomplete'): Generator<ResponseStreamEvent> {
      if (!message) return;
      const { index, item, part } = message;
      if (part) {
        yield ev({ type: 'response.output_text.done', item_id: item.id, output_index: index, content_index: part.index, text: part.text.text, logprobs: [] });
        yield ev({ type: 'response.content_part.done', item_id: item.id, output_index: index, content_index: part.index, part: structuredClone(part.text) });
      }
      item.status = status;
      yield ev({ type: 'response.output_item.done', output_index: index, item: structuredClone(item) });
      message = undefined;
    }
    function* closeCalls(status: 'completed' | 'incomplete'): Generator<ResponseStreamEvent> {
      for (const { index, item } of calls.values()) {
        if (item.status !== 'in_progress') continue;
        yield ev({ type: 'response.function_call_arguments.done', item_id: item.id, output_index: index, name: item.name, arguments: item.arguments });
        item.status = status;
        yield ev({ type: 'response.output_item.done', output_index: index, item: structuredClone(item) });
      }
    }
    function* consume(chunk: ChatChunk): Generator<ResponseStreamEvent> {
      if (chunk.usage) usage = chunk.usage;
      const choice = chunk.choices.find((c) => c.index === 0);
      if (!choice) return;
      const reasoning = choice.delta.reasoning_item as ReasoningItem | undefined;
      if (reasoning) {
        // Whole, as the upstream finished it: added and done at once.
        yield* closeMessage('completed');
        const index = output.length;
        output.push(reasoning);
        yield ev({ type: 'response.output_item.added', output_index: index, item: structuredClone(reasoning) });
        yield ev({ type: 'response.output_item.done', output_index: index, item: structuredClone(reasoning) });
      }
      const { content, tool_calls: toolCalls } = choice.delta;
      if (typeof content === 'string' && content !== '') {
        // Text after tool calls (rare) opens a new message, keeping output order.
        const open = yield* openMessage();
        if (!open.part) {
          const text: OutputText = { type: 'output_text', text: '', annotations: [] };
          open.part = { index: open.item.content.length, text };
          open.item.content.push(text);
          yield ev({ type: 'response.content_part.added', item_id: open.item.id, output_index: open.index, content_index: open.part.index, part: structuredClone(text) });
        }
        open.part.text.text += content;
        yield ev({ type: 'response.output_text.delta', item_id: open.item.id, output_index: open.index, content_index: open.part.index, delta: content, logprobs: [] });
      }
      if (typeof choice.delta.refusal === 'string' && choice.delta.refusal !== '') {
        const open = yield* openMessage();
        let part = open.item.content.find((p) => p.type === 'refusal');
        if (!part) {
          part = { type: 'refusal', refusal: '' };
          open.item.content.push(part);
          yield ev({ type: 'response.content_part.added', item_id: open.item.id, output_index: open.index, content_index: open.item.content.length - 1, part: structuredClone(part) });
        }
        part.refusal += choice.delta.refusal;
        yield ev({ type: 'response.refusal.delta', item_id: open.item.id, output_index: open.index, content_index: open.item.content.indexOf(part), delta: choice.delta.refusal });
      }
      for (const delta of toolCalls ?? []) {
        let call = calls.get(delta.index);
        if (!call) {
          yield* closeMessage('completed');
          const item: FunctionCallItem = {
            type: 'function_call',
            id: createItemId('fc'),
            call_id: delta.id ?? `call_${createItemId('fc').slice(3, 27)}`,
            name: delta.function?.name ?? '',
            arguments: '',
            status: 'in_progress',
          };
          call = { kind: 'call', index: output.length, item };
          calls.set(delta.index, call);
          output.push(item);
          yield ev({ type: 'response.output_item.added', output_index: call.index, item: structuredClone(item) });
        } else if (delta.function?.name) {
          call.item.name += delta.function.name;
        }
        const args = delta.function?.arguments;
        if (args) {
          call.item.arguments += args;
          yield ev({ type: 'response.function_call_arguments.delta', item_id: call.item.id, output_index: call.index, delta: args });
        }
      }
      if (choice.finish_reason) finishReason = choice.finish_reason;
    }

    try {
      if (!first.done) yield* consume(first.value);
      for (let next = await iterator.next(); !next.done; next = await iterator.next()) yield* consume(next.value);
    } catch (err) {
      const e = toGatewayError(err);
      // What was streamed so far stays in the failed response, marked incomplete.
      yield* closeMessage('incomplete');
      yield* closeCalls('incomplete');
      // The Response's error.code is one of OpenAI's codes (the SDK types it
      // so); the error event after it carries the gateway's own code.
      const code = e.code === 'rate_limited' || e.code === 'upstream_rate_limited' ? 'rate_limit_exceeded' : 'server_error';
      Object.assign(response, { status: 'failed', error: { code, message: e.message }, output: structuredClone(output), usage: responsesUsage(usage) });
      yield ev({ type: 'response.failed', response: snapshot() });
      yield ev({ type: 'error', code: e.code, message: e.message, param: e.param });
      outcome = { response: snapshot(), error: err };
      return;
    }
    const status = finishStatus(finishReason);
    const itemStatus = status.status === 'completed' ? 'completed' : 'incomplete';
    yield* closeMessage(itemStatus);
    yield* closeCalls(itemStatus);
    Object.assign(response, status, {
      completed_at: status.status === 'completed' ? Math.floor(Date.now() / 1000) : null,
      output: structuredClone(output),
      usage: responsesUsage(usage),
    });
    yield ev({ type: status.status === 'completed' ? 'response.completed' : 'response.incomplete', response: snapshot() });
    outcome = { response: snapshot() };
  }
  return { events: run(), outcome: () => outcome };
}
