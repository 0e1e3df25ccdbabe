// Chat chunks as Anthropic's stream: message_start, ping, per content block
// content_block_start / content_block_delta (text_delta, input_json_delta) /
// content_block_stop, then message_delta (stop_reason, usage) and
// message_stop. A stream that fails after it started ends with one error
// event, in Anthropic's error shape.
import { toGatewayError } from '../../errors.js';
import type { ChatChunk, ThinkingDelta, Usage } from '../schemas.js';
import { anthropicErrorBody, type AnthropicErrorBody } from './errors.js';
import { anthropicUsage, createMessageId, stopReason, type AnthropicMessageOut, type StopReason } from './reply.js';

export type AnthropicStreamEvent =
  | { type: 'message_start'; message: AnthropicMessageOut }
  | { type: 'ping' }
  | {
      type: 'content_block_start';
      index: number;
      content_block:
        | { type: 'text'; text: '' }
        | { type: 'tool_use'; id: string; name: string; input: Record<string, never> }
        | { type: 'thinking'; thinking: string; signature: string }
        | { type: 'redacted_thinking'; data: string };
    }
  | {
      type: 'content_block_delta';
      index: number;
      delta: { type: 'text_delta'; text: string } | { type: 'input_json_delta'; partial_json: string } | { type: 'thinking_delta'; thinking: string } | { type: 'signature_delta'; signature: string };
    }
  | { type: 'content_block_stop'; index: number }
  | {
      type: 'message_delta';
      delta: { stop_reason: StopReason; stop_sequence: string | null };
      usage: { output_tokens: number; input_tokens: number; cache_creation_input_tokens: number; cache_read_input_tokens: number };
    }
  | { type: 'message_stop' }
  | AnthropicErrorBody;

export function encodeAnthropicEvent(event: AnthropicStreamEvent): string {
  return `event: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`;
}

export interface MessagesStreamOutcome {
  stopReason?: StopReason;
  usage?: Usage;
  error?: unknown;
}

export interface MessagesStreamOptions {
  model: string;
  id?: string;
  /** Counted before the call, so message_start can carry it as Anthropic's does; the final count comes in message_delta. */
  inputTokens?: number;
  requestId?: string;
}

/**
 * As for the Responses stream, the first chunk is awaited before any event,
 * so a failure before the first byte is still an HTTP error.
 */
export function chatStreamToMessages(chunks: AsyncIterable<ChatChunk>, options: MessagesStreamOptions): { events: AsyncIterable<AnthropicStreamEvent>; outcome(): MessagesStreamOutcome | undefined } {
  let outcome: MessagesStreamOutcome | undefined;
  async function* run(): AsyncGenerator<AnthropicStreamEvent> {
    const iterator = chunks[Symbol.asyncIterator]();
    const first = await iterator.next();
    yield {
      type: 'message_start',
      message: {
        id: options.id ?? createMessageId(),
        type: 'message',
        role: 'assistant',
        model: options.model,
        content: [],
        stop_reason: null,
        stop_sequence: null,
        usage: { input_tokens: options.inputTokens ?? 0, output_tokens: 0, cache_creation_input_tokens: 0, cache_read_input_tokens: 0 },
      },
    };
    yield { type: 'ping' };

    let blocks = 0;
    let open: { index: number; kind: 'text' } | { index: number; kind: 'tool'; toolIndex: number } | { index: number; kind: 'thinking'; block: number } | undefined;
    let finish: string | null = null;
    let usage: Usage | undefined;

    function* close(): Generator<AnthropicStreamEvent> {
      if (!open) return;
      yield { type: 'content_block_stop', index: open.index };
      open = undefined;
    }
    function* consume(chunk: ChatChunk): Generator<AnthropicStreamEvent> {
      if (chunk.usage) usage = chunk.usage;
      const choice = chunk.choices.find((c) => c.index === 0);
      if (!choice) return;
      // Anthropic's thinking (an Anthropic upstream's only), passed on block by block as it came.
      const thinking = choice.delta.thinking_block as ThinkingDelta | undefined;
      if (thinking) {
        if (open?.kind !== 'thinking' || open.block !== thinking.block) {
          yield* close();
          open = { index: blocks++, kind: 'thinking', block: thinking.block };
          yield {
            type: 'content_block_start',
            index: open.index,
            content_block: thinking.type === 'redacted_thinking' ? { type: 'redacted_thinking', data: thinking.data ?? '' } : { type: 'thinking', thinking: '', signature: '' },
          };
        }
        if (thinking.type === 'thinking' && thinking.thinking) yield { type: 'content_block_delta', index: open.index, delta: { type: 'thinking_delta', thinking: thinking.thinking } };
        if (thinking.signature) yield { type: 'content_block_delta', index: open.index, delta: { type: 'signature_delta', signature: thinking.signature } };
      }
      const text = typeof choice.delta.content === 'string' && choice.delta.content !== '' ? choice.delta.content : typeof choice.delta.refusal === 'string' ? choice.delta.refusal : '';
      if (text) {
        if (open?.kind !== 'text') {
          yield* close();
          open = { index: blocks++, kind: 'text' };
          yield { type: 'content_block_start', index: open.index, content_block: { type: 'text', text: '' } };
        }
        yield { type: 'content_block_delta', index: open.index, delta: { type: 'text_delta', text } };
      }
      for (const call of choice.delta.tool_calls ?? []) {
        // Anthropic blocks do not interleave: a new tool index closes the previous block.
        if (open?.kind !== 'tool' || open.toolIndex !== call.index) {
          yield* close();
          open = { index: blocks++, kind: 'tool', toolIndex: call.index };
          yield { type: 'content_block_start', index: open.index, content_block: { type: 'tool_use', id: call.id ?? `toolu_${createMessageId().slice(4, 28)}`, name: call.function?.name ?? '', input: {} } };
        }
        const args = call.function?.arguments;
        if (args) yield { type: 'content_block_delta', index: open.index, delta: { type: 'input_json_delta', partial_json: args } };
      }
      if (choice.finish_reason) finish = choice.finish_reason;
    }

    try {
      if (!first.done) yield* consume(first.value);
      for (let next = await iterator.next(); !next.done; next = await iterator.next()) yield* consume(next.value);
    } catch (err) {
      const e = toGatewayError(err);
      yield anthropicErrorBody(e, options.requestId);
      outcome = { usage, error: err };
      return;
    }
    yield* close();
    const reason = stopReason(finish);
    yield { type: 'message_delta', delta: { stop_reason: reason, stop_sequence: null }, usage: anthropicUsage(usage) };
    yield { type: 'message_stop' };
    outcome = { stopReason: reason, usage };
  }
  return { events: run(), outcome: () => outcome };
}
