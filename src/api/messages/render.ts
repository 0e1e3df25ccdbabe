// The Messages ingress's reply renderer: the answer every stage saw in chat's
// shape, and every refusal, as Anthropic's API has them (reply.ts, stream.ts,
// errors.ts), so Anthropic's clients read them with their own types.
import { GatewayError, toGatewayError } from '../../errors.js';
import { costComment } from '../cost-comment.js';
import type { RequestContext } from '../../pipeline/context.js';
import type { Renderer } from '../../pipeline/stage.js';
import type { ChatChunk, ChatCompletion } from '../schemas.js';
import { anthropicErrorBody } from './errors.js';
import { chatToMessage } from './reply.js';
import { chatStreamToMessages, encodeAnthropicEvent } from './stream.js';

const errorBody = (ctx: RequestContext, err: GatewayError) => anthropicErrorBody(err, ctx.id);

export const messagesRenderer: Renderer = {
  json: (ctx, reply) => (reply.status >= 300 ? reply.body : chatToMessage(reply.body as ChatCompletion, { model: ctx.requestedModel ?? '' })),
  stream: (ctx, chunks) => renderStream(ctx, chunks),
  error: errorBody,
};

/** count_tokens answers in Anthropic's shape already; only its errors need rendering. */
export const countTokensRenderer: Renderer = {
  json: (_ctx, reply) => reply.body,
  stream: () => {
    throw new Error('count_tokens does not stream');
  },
  error: errorBody,
};

async function* renderStream(ctx: RequestContext, chunks: AsyncIterable<ChatChunk>): AsyncGenerator<string> {
  const { events, outcome } = chatStreamToMessages(chunks, { model: ctx.requestedModel ?? '', inputTokens: ctx.promptTokens, requestId: ctx.id });
  let failed = false;
  for await (const event of events) {
    // The translator ends right after its error event; the error itself is in its outcome then.
    if (event.type === 'error') failed = true;
    else yield encodeAnthropicEvent(event);
  }
  if (!failed) {
    const cost = costComment(ctx);
    if (cost) yield cost;
    return;
  }
  // A run limit that ended the stream, or the client leaving, says so rather than "cancelled".
  const reason: unknown = ctx.signal.aborted ? ctx.signal.reason : undefined;
  const error = reason instanceof GatewayError ? reason : toGatewayError(outcome()?.error);
  ctx.error = error;
  yield encodeAnthropicEvent(anthropicErrorBody(error, ctx.id));
}
