// The Responses API as an upstream speaks it (OpenAI itself, providers with
// `responses_api: true`): the answer, plain or streamed, read back into the
// chat shape the reply stages (meter, guard, cache) and the audit read. The
// ingress's renderer then gives the client a Response again.
import type { ChatChunk, ChatCompletion, ChatRequest, Usage } from '../../api/schemas.js';
import { DEFAULT_RESPONSE_LIMITS, type ResponseLimitsConfig } from '../../config/schema.js';
import { GatewayError } from '../../errors.js';
import { parseAnswerJson } from '../answer-json.js';
import { upstreamProtocolError } from '../errors.js';
import { parseSse } from '../sse.js';
import { countUsage } from '../usage.js';

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Responses usage as chat usage, with the cached-input and reasoning details kept for pricing. */
function chatUsage(u: unknown): Usage | undefined {
  if (!isObject(u) || typeof u.input_tokens !== 'number' || typeof u.output_tokens !== 'number') return undefined;
  const cached = isObject(u.input_tokens_details) ? u.input_tokens_details.cached_tokens : undefined;
  const reasoning = isObject(u.output_tokens_details) ? u.output_tokens_details.reasoning_tokens : undefined;
  return {
    prompt_tokens: u.input_tokens,
    completion_tokens: u.output_tokens,
    total_tokens: typeof u.total_tokens === 'number' ? u.total_tokens : u.input_tokens + u.output_tokens,
    ...(typeof cached === 'number' ? { prompt_tokens_details: { cached_tokens: cached } } : {}),
    ...(typeof reasoning === 'number' ? { completion_tokens_details: { reasoning_tokens: reasoning } } : {}),
  } as Usage;
}

function finishReason(response: Json, toolCalls: boolean): string {
  if (response.status === 'incomplete') {
    const reason = isObject(response.incomplete_details) ? response.incomplete_details.reason : undefined;
    return reason === 'content_filter' ? 'content_filter' : 'length';
  }
  return toolCalls ? 'tool_calls' : 'stop';
}

function failed(provider: string): GatewayError {
  return new GatewayError('upstream_error', `Provider "${provider}" reported that the response failed.`, { upstream: { errorClass: 'protocol', fallbackable: true } });
}

export async function readResponseAsChat(provider: string, data: unknown, chat: ChatRequest): Promise<ChatCompletion> {
  if (!isObject(data) || !Array.isArray(data.output)) throw upstreamProtocolError(provider, 'a response without output');
  if (data.status === 'failed') throw failed(provider);
  let text = '';
  let refusal: string | undefined;
  const toolCalls: NonNullable<ChatCompletion['choices'][number]['message']['tool_calls']> = [];
  const reasoning: Json[] = [];
  for (const item of data.output as unknown[]) {
    if (!isObject(item)) throw upstreamProtocolError(provider, 'an output item that is not an object');
    if (item.type === 'message' && Array.isArray(item.content)) {
      for (const part of item.content as unknown[]) {
        if (!isObject(part)) continue;
        if (part.type === 'output_text' && typeof part.text === 'string') text += part.text;
        else if (part.type === 'refusal' && typeof part.refusal === 'string') refusal = (refusal ?? '') + part.refusal;
      }
    } else if (item.type === 'function_call') {
      if (typeof item.call_id !== 'string' || typeof item.name !== 'string' || typeof item.arguments !== 'string') throw upstreamProtocolError(provider, 'a function call without call_id, name and arguments');
      toolCalls.push({ id: item.call_id, type: 'function', function: { name: item.name, arguments: item.arguments } });
    } else if (item.type === 'reasoning') {
      // Kept whole (summary, encrypted state) for a Responses client; a chat client's reply has no place for them.
      reasoning.push(item);
    }
  }
  const message: ChatCompletion['choices'][number]['message'] = { role: 'assistant', content: text === '' ? null : text };
  if (refusal !== undefined) message.refusal = refusal;
  if (toolCalls.length > 0) message.tool_calls = toolCalls;
  if (reasoning.length > 0) message.reasoning_items = reasoning;
  const usage = chatUsage(data.usage) ?? (await countUsage(chat, text + toolCalls.map((c) => c.function.name + c.function.arguments).join('')));
  return {
    id: typeof data.id === 'string' ? data.id : 'resp-upstream',
    object: 'chat.completion',
    created: typeof data.created_at === 'number' ? data.created_at : Math.floor(Date.now() / 1000),
    model: typeof data.model === 'string' ? data.model : chat.model,
    choices: [{ index: 0, message, finish_reason: finishReason(data, toolCalls.length > 0), logprobs: null }],
    usage,
  } as ChatCompletion;
}

/** The Responses event stream as chat chunks: text and refusal deltas, tool calls by output index, then the finish and usage chunks. */
export async function* readResponsesStreamAsChat(
  provider: string,
  body: AsyncIterable<Buffer>,
  chat: ChatRequest,
  limits: ResponseLimitsConfig = DEFAULT_RESPONSE_LIMITS,
): AsyncGenerator<ChatChunk> {
  let id = 'resp-upstream';
  let model = chat.model;
  const created = Math.floor(Date.now() / 1000);
  const chunk = (delta: Json, finish: string | null = null): ChatChunk => ({ id, object: 'chat.completion.chunk', created, model, choices: [{ index: 0, delta, finish_reason: finish }] }) as ChatChunk;
  // Output index of each function call -> its tool_calls index in chat.
  const calls = new Map<number, number>();
  let text = '';
  for await (const sse of parseSse(body, { maxEventBytes: limits.max_event_bytes })) {
    if (sse.data === '[DONE]') break;
    const event = parseAnswerJson(provider, sse.data, { maxDepth: limits.max_json_depth, what: 'a stream event' });
    if (!isObject(event) || typeof event.type !== 'string') throw upstreamProtocolError(provider, 'a stream event without a type');
    switch (event.type) {
      case 'response.created': {
        const r = event.response;
        if (isObject(r)) {
          if (typeof r.id === 'string') id = r.id;
          if (typeof r.model === 'string') model = r.model;
        }
        yield chunk({ role: 'assistant', content: '' });
        break;
      }
      case 'response.output_text.delta':
        if (typeof event.delta === 'string' && event.delta !== '') {
          text += event.delta;
          yield chunk({ content: event.delta });
        }
        break;
      case 'response.refusal.delta':
        if (typeof event.delta === 'string') yield chunk({ refusal: event.delta });
        break;
      case 'response.output_item.added': {
        const item = event.item;
        if (!isObject(item) || item.type !== 'function_call') break;
        if (typeof event.output_index !== 'number' || typeof item.call_id !== 'string' || typeof item.name !== 'string') throw upstreamProtocolError(provider, 'a function call without call_id and name');
        const index = calls.size;
        calls.set(event.output_index, index);
        text += item.name;
        yield chunk({ tool_calls: [{ index, id: item.call_id, type: 'function', function: { name: item.name, arguments: '' } }] });
        break;
      }
      case 'response.function_call_arguments.delta': {
        const index = typeof event.output_index === 'number' ? calls.get(event.output_index) : undefined;
        if (index === undefined || typeof event.delta !== 'string') throw upstreamProtocolError(provider, 'function call arguments for no open call');
        text += event.delta;
        yield chunk({ tool_calls: [{ index, function: { arguments: event.delta } }] });
        break;
      }
      case 'response.output_item.done':
        // A reasoning item is passed on whole once it is done (delta.reasoning_item), for a Responses client.
        if (isObject(event.item) && event.item.type === 'reasoning') yield chunk({ reasoning_item: event.item });
        break;
      case 'response.completed':
      case 'response.incomplete': {
        const r = isObject(event.response) ? event.response : {};
        yield chunk({}, finishReason(r, calls.size > 0));
        const usage = chatUsage(r.usage) ?? (await countUsage(chat, text));
        yield { id, object: 'chat.completion.chunk', created, model, choices: [], usage } as ChatChunk;
        return;
      }
      case 'response.failed':
      case 'error':
        throw failed(provider);
      default:
        // Content part, item done and reasoning events add nothing the chat shape carries.
        break;
    }
  }
  throw upstreamProtocolError(provider, 'the stream ended before the response was complete');
}
