// Anthropic's typed stream events as OpenAI chat.completion.chunk objects.
// Anthropic numbers content blocks across text and tools alike; OpenAI numbers
// tool calls alone, so each tool_use block gets the next tool index.
import type { ChatChunk, ChatChunkChoice, ChatRequest, ThinkingDelta } from '../../api/schemas.js';
import { DEFAULT_RESPONSE_LIMITS, type ResponseLimitsConfig } from '../../config/schema.js';
import { GatewayError } from '../../errors.js';
import { parseAnswerJson } from '../answer-json.js';
import { upstreamProtocolError } from '../errors.js';
import { parseSse } from '../sse.js';
import { countUsage } from '../usage.js';
import { anthropicUsageProblem, USAGE_FIELDS, finishReason, hasUsage, translateUsage, type AnthropicUsage } from './response.js';

interface StreamEvent {
  type?: string;
  message?: { id?: unknown; model?: unknown; usage?: AnthropicUsage };
  index?: unknown;
  content_block?: { type?: string; text?: unknown; id?: unknown; name?: unknown; thinking?: unknown; signature?: unknown; data?: unknown };
  delta?: { type?: string; text?: unknown; partial_json?: unknown; thinking?: unknown; signature?: unknown; stop_reason?: string | null };
  usage?: AnthropicUsage;
  error?: { type?: unknown };
}

export async function* readMessageStream(
  provider: string,
  body: AsyncIterable<Buffer | Uint8Array | string>,
  request: ChatRequest,
  limits: ResponseLimitsConfig = DEFAULT_RESPONSE_LIMITS,
): AsyncGenerator<ChatChunk> {
  let id = '';
  let model = request.model;
  const created = Math.floor(Date.now() / 1000);
  const usage: AnthropicUsage = {};
  const toolIndex = new Map<number, number>();
  let text = '';
  let started = false;
  let finished = false;
  let stopped = false;

  const chunk = (delta: ChatChunkChoice['delta'], finish: string | null = null): ChatChunk => ({
    id,
    object: 'chat.completion.chunk',
    created,
    model,
    choices: [{ index: 0, delta, finish_reason: finish, logprobs: null }],
  });

  for await (const sse of parseSse(body, { maxEventBytes: limits.max_event_bytes })) {
    const event = parseEvent(provider, sse.data, limits);
    const type = event.type ?? sse.event;
    if (type === 'ping') continue;
    if (type === 'error') throw streamError(provider, event);
    if (type === 'message_start') {
      if (started) throw upstreamProtocolError(provider, 'a second message_start in one stream');
      const message = event.message;
      if (!message || typeof message.id !== 'string') throw upstreamProtocolError(provider, 'a message_start without a message id');
      id = `chatcmpl-${message.id}`;
      if (typeof message.model === 'string') model = message.model;
      mergeUsage(provider, usage, message.usage);
      started = true;
      yield chunk({ role: 'assistant', content: '' });
      continue;
    }
    if (!started) throw upstreamProtocolError(provider, 'stream events before message_start');

    if (type === 'content_block_start') {
      const block = event.content_block;
      if (block?.type === 'text' && typeof block.text === 'string' && block.text) {
        text += block.text;
        yield chunk({ content: block.text });
      } else if (block?.type === 'tool_use') {
        if (typeof event.index !== 'number' || typeof block.id !== 'string' || typeof block.name !== 'string') {
          throw upstreamProtocolError(provider, 'a tool_use block without index, id or name');
        }
        const index = toolIndex.size;
        toolIndex.set(event.index, index);
        text += block.name;
        yield chunk({ tool_calls: [{ index, id: block.id, type: 'function', function: { name: block.name, arguments: '' } }] });
      } else if (block?.type === 'thinking' && typeof event.index === 'number') {
        const thinking: ThinkingDelta = { block: event.index, type: 'thinking', thinking: typeof block.thinking === 'string' ? block.thinking : '' };
        if (typeof block.signature === 'string' && block.signature) thinking.signature = block.signature;
        yield chunk({ thinking_block: thinking });
      } else if (block?.type === 'redacted_thinking' && typeof event.index === 'number' && typeof block.data === 'string') {
        yield chunk({ thinking_block: { block: event.index, type: 'redacted_thinking', data: block.data } satisfies ThinkingDelta });
      }
    } else if (type === 'content_block_delta') {
      const delta = event.delta;
      if (delta?.type === 'text_delta' && typeof delta.text === 'string' && delta.text) {
        text += delta.text;
        yield chunk({ content: delta.text });
      } else if (delta?.type === 'input_json_delta' && typeof delta.partial_json === 'string' && delta.partial_json) {
        // Deltas of blocks that are not client tools (server tools) have no OpenAI form.
        const index = typeof event.index === 'number' ? toolIndex.get(event.index) : undefined;
        if (index === undefined) continue;
        text += delta.partial_json;
        yield chunk({ tool_calls: [{ index, function: { arguments: delta.partial_json } }] });
      } else if (delta?.type === 'thinking_delta' && typeof event.index === 'number' && typeof delta.thinking === 'string') {
        yield chunk({ thinking_block: { block: event.index, type: 'thinking', thinking: delta.thinking } satisfies ThinkingDelta });
      } else if (delta?.type === 'signature_delta' && typeof event.index === 'number' && typeof delta.signature === 'string') {
        yield chunk({ thinking_block: { block: event.index, type: 'thinking', signature: delta.signature } satisfies ThinkingDelta });
      }
    } else if (type === 'message_delta') {
      mergeUsage(provider, usage, event.usage);
      if (event.delta?.stop_reason !== undefined && event.delta.stop_reason !== null && !finished) {
        finished = true;
        yield chunk({}, finishReason(event.delta.stop_reason));
      }
    } else if (type === 'message_stop') {
      stopped = true;
      break;
    }
    // content_block_stop needs nothing, and Anthropic may add event types:
    // its versioning policy asks clients to ignore the ones they do not know.
  }

  if (!stopped) throw upstreamProtocolError(provider, 'the stream ended before the answer was complete');
  if (!finished) yield chunk({}, 'stop');
  yield {
    id,
    object: 'chat.completion.chunk',
    created,
    model,
    choices: [],
    usage: hasUsage(usage) ? translateUsage(usage) : await countUsage(request, text),
  };
}

function parseEvent(provider: string, data: string, limits: ResponseLimitsConfig): StreamEvent {
  const event = parseAnswerJson(provider, data, { maxDepth: limits.max_json_depth, what: 'a stream event' });
  if (!event || typeof event !== 'object' || Array.isArray(event)) throw upstreamProtocolError(provider, 'a stream event that is not an object');
  return event as StreamEvent;
}

// Later events carry running totals, so the newest value of each field wins.
function mergeUsage(provider: string, into: AnthropicUsage, from: AnthropicUsage | undefined): void {
  const problem = anthropicUsageProblem(from);
  if (problem) throw upstreamProtocolError(provider, problem);
  if (!from) return;
  for (const field of USAGE_FIELDS) {
    const value = from[field];
    if (typeof value === 'number') into[field] = value;
  }
}

// The upstream's error message is not passed on (see ../errors.ts).
function streamError(provider: string, event: StreamEvent): GatewayError {
  const upstream = { errorClass: 'protocol' as const, fallbackable: true };
  if (event.error?.type === 'overloaded_error') {
    return new GatewayError('upstream_unavailable', `Provider "${provider}" is overloaded and ended the stream early.`, { upstream });
  }
  return new GatewayError('upstream_error', `Provider "${provider}" reported an error mid-stream.`, { upstream });
}
