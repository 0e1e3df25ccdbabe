import type { ChatChunk, ChatRequest, Usage } from '../../api/schemas.js';
import { DEFAULT_RESPONSE_LIMITS, type ResponseLimitsConfig } from '../../config/schema.js';
import { GatewayError } from '../../errors.js';
import { parseAnswerJson } from '../answer-json.js';
import { upstreamProtocolError } from '../errors.js';
import { parseSse } from '../sse.js';
import { countUsage, isUsage, normaliseUsage } from '../usage.js';

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
