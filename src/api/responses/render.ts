// The Responses ingress's reply shape: the chat reply the pipeline produced
// (after the guard, the meter and the cache tap) as a Response object, or
// the chat stream as the Responses event sequence. The Response sent is kept
// on the context for the store's after stage.
import { toGatewayError } from '../../errors.js';
import { costComment } from '../cost-comment.js';
import type { RequestContext } from '../../pipeline/context.js';
import type { JsonReply, Renderer } from '../../pipeline/stage.js';
import type { ChatChunk, ChatCompletion } from '../schemas.js';
import { chatToResponse, responseMeta } from './reply.js';
import { storeTurn } from './stages.js';
import { chatStreamToResponses } from './stream.js';
import { encodeResponsesEvent } from './types.js';

/** The Response the store stage built (and stored); built here only for a reply that skipped it. */
function renderJson(ctx: RequestContext, reply: JsonReply): unknown {
  if (reply.status >= 300 || ctx.responses!.queued) return reply.body;
  const turn = ctx.responses!;
  return (turn.response ??= chatToResponse(reply.body as ChatCompletion, responseMeta(turn)));
}

const TERMINAL = new Set<string>(['response.completed', 'response.incomplete', 'response.failed']);

async function* renderStream(ctx: RequestContext, chunks: AsyncIterable<ChatChunk>): AsyncGenerator<string> {
  const stream = chatStreamToResponses(chunks, responseMeta(ctx.responses!));
  for await (const event of stream.events) {
    if (TERMINAL.has(event.type)) {
      // Stored before the client learns the response is over, so it can be read back at once.
      ctx.responses!.response = (event as Extract<typeof event, { response: unknown }>).response;
      const stored = storeTurn(ctx);
      if (stored) await stored;
    }
    yield encodeResponsesEvent(event);
  }
  const outcome = stream.outcome();
  if (!outcome) return;
  ctx.responses!.response = outcome.response;
  const cost = outcome.error === undefined ? costComment(ctx) : '';
  if (cost) yield cost;
  if (outcome.error !== undefined) {
    // A run limit that ended the stream, or the client leaving, says so rather than "cancelled".
    const reason: unknown = ctx.signal.aborted ? ctx.signal.reason : undefined;
    ctx.error = toGatewayError(reason ?? outcome.error);
  }
}

export const responsesRenderer: Renderer = { json: renderJson, stream: renderStream };
