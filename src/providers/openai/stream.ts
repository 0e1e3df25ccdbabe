import type { ChatChunk, ChatRequest, Usage } from '../../api/schemas.js';
import { DEFAULT_RESPONSE_LIMITS, type ResponseLimitsConfig } from '../../config/schema.js';
import { GatewayError } from '../../errors.js';
import { parseAnswerJson } from '../answer-json.js';
import { upstreamProtocolError } from '../errors.js';
import { parseSse } from '../sse.js';
import { countUsage, isUsage, normaliseUsage, usageProblem } from '../usage.js';

export async function* readChatStream(
  provider: string,
  body: AsyncIterable<Buffer>,
  request: ChatRequest,
  limits: ResponseLimitsConfig = DEFAULT_RESPONSE_LIMITS,
): AsyncGenerator<ChatChunk> {
  let usage: Usage | undefined;
  let text = '';
  let finished = false;
  let done = false;
  let last: ChatChunk | undefined;

  for await (const event of parseSse(body, { maxEventBytes: limits.max_event_bytes })) {
    if (event.data === '[DONE]') {
      done = true;
      break;
    }
    const chunk = parseAnswerJson(provider, event.data, { maxDepth: limits.max_json_depth, what: 'a stream event' }) as (ChatChunk & { error?: unknown }) | null;
    if (!chunk || typeof chunk !== 'object' || Array.isArray(chunk)) throw upstreamProtocolError(provider, 'a stream event that is not an object');
    if (chunk.error !== undefined || event.event === 'error') {
      throw new GatewayError('upstream_error', `Provider "${provider}" reported an error mid-stream.`, {
        upstream: { errorClass: 'protocol', fallbackable: true },
      });
    }
    if (!Array.isArray(chunk.choices)) throw upstreamProtocolError(provider, 'a stream chunk without choices');
    const problem = chunkProblem(chunk) ?? usageProblem(chunk.usage);
    if (problem) throw upstreamProtocolError(provider, problem);
    if (isUsage(chunk.usage)) {
      usage = normaliseUsage(chunk.usage);
      if (chunk.choices.length === 0) {
        last = chunk;
        continue; // re-emitted below as the one usage chunk
      }
    }
    for (const choice of chunk.choices) {
      const delta = choice.delta;
      if (delta?.content) text += delta.content;
      if (delta?.tool_calls) for (const call of delta.tool_calls) text += (call.function?.name ?? '') + (call.function?.arguments ?? '');
      if (choice.finish_reason) finished = true;
    }
    last = chunk;
    yield chunk;
  }
  if (!done && !finished) throw upstreamProtocolError(provider, 'the stream ended before the answer was complete');
  usage ??= await countUsage(request, text);
  yield {
    id: last?.id ?? 'chatcmpl-gateway',
    object: 'chat.completion.chunk',
    created: last?.created ?? Math.floor(Date.now() / 1000),
    model: last?.model ?? request.model,
    choices: [],
    usage,
  };
}

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const isIndex = (v: unknown) => Number.isSafeInteger(v) && (v as number) >= 0;
const isOptionalString = (v: unknown) => v === undefined || v === null || typeof v === 'string';

/**
 * What is wrong with a chunk's choices, as the rest of the gateway reads them
 * (deltas, tool-call fragments, finish reasons), or undefined. A choice
 * without a delta gets an empty one: some servers leave it out of the last chunk.
 */
function chunkProblem(chunk: ChatChunk): string | undefined {
  for (const choice of chunk.choices as unknown[]) {
    if (!isObject(choice) || !isIndex(choice.index)) return 'a stream choice without an index';
    if (!isOptionalString(choice.finish_reason)) return 'a finish_reason that is not text';
    if (choice.delta === undefined) choice.delta = {};
    const delta = choice.delta;
    if (!isObject(delta)) return 'a stream choice whose delta is not an object';
    if (!isOptionalString(delta.content) || !isOptionalString(delta.refusal)) return 'delta content that is not text';
    if (delta.tool_calls === undefined || delta.tool_calls === null) continue;
    if (!Array.isArray(delta.tool_calls)) return 'tool_calls that are not a list';
    for (const call of delta.tool_calls as unknown[]) {
      if (!isObject(call) || !isIndex(call.index) || !isOptionalString(call.id)) return 'a tool call fragment without an index';
      const fn = call.function;
      if (fn !== undefined && (!isObject(fn) || !isOptionalString(fn.name) || !isOptionalString(fn.arguments))) return 'a tool call fragment whose function is not text';
    }
  }
  return undefined;
}
