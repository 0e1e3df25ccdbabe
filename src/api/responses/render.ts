// The Responses ingress's reply shape: the chat reply the pipeline produced
// (after the guard, the meter and the cache tap) as a Response object, or
// the chat stream as the Responses event sequence. The Response sent is kept
// on the context for the store's after stage.
import { toGatewayError } from '../../errors.js';
import type { RequestContext } from '../../pipeline/context.js';
import type { JsonReply, Renderer } from '../../pipeline/stage.js';
import type { ChatChunk, ChatCompletion } from '../schemas.js';
import { chatToResponse, type ResponseMeta } from './reply.js';
import { chatStreamToResponses } from './stream.js';
import { encodeResponsesEvent } from './types.js';

function metaOf(ctx: RequestContext): ResponseMeta {
  const turn = ctx.responses!;
  return { id: turn.id, createdAt: turn.createdAt, model: turn.request.model, request: turn.request };
}

function renderJson(ctx: RequestContext, reply: JsonReply): unknown {
  if (reply.status >= 300 || ctx.responses!.queued) return reply.body;
  const response = chatToResponse(reply.body as ChatCompletion, metaOf(ctx));
  ctx.responses!.response = response;
  return response;
}

async function* renderStream(ctx: RequestContext, chunks: AsyncIterable<ChatChunk>): AsyncGenerator<string> {
  const stream = chatStreamToResponses(chunks, metaOf(ctx));
  for await (const event of stream.events) yield encodeResponsesEvent(event);
  const outcome = stream.outcome();
  if (!outcome) return;
  ctx.responses!.response = outcome.response;
  if (outcome.error !== undefined) {
    // A run limit that ended the stream, or the client leaving, says so rather than "cancelled".
    const reason: unknown = ctx.signal.aborted ? ctx.signal.reason : undefined;
    ctx.error = toGatewayError(reason ?? outcome.error);
  }
}

export const responsesRenderer: Renderer = { json: renderJson, stream: renderStream };
