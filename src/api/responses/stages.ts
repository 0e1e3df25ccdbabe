// The Responses ingress's own stages: parsing a request into the request
// context (the chat request every governance stage reads, with the Responses
// request kept beside it) and storing the Response once it is over. Between
// them the pipeline is the chat one; render.ts turns its reply back.
import { GatewayError } from '../../errors.js';
import type { Reply, RequestContext } from '../../pipeline/context.js';
import type { AfterStage, ReplyStage } from '../../pipeline/stage.js';
import { PROMPT_MODEL_PREFIX } from '../../prompts/stage.js';
import { buildStoredRecord, continueFrom } from './conversation.js';
import { parseResponsesRequest } from './parse.js';
import { chatToResponse, createItemId, responseMeta, responseSkeleton } from './reply.js';
import type { ResponseObject } from './types.js';
import { DEFAULT_MAX_RETENTION_DAYS, storedBodies, storedResponseTtlMs } from './store.js';
import type { ChatCompletion, ChatRequest } from '../schemas.js';
import type { ResponsesInputItem, ResponsesRequest } from './schema.js';
import { responsesToChat, unsupportedError, type UnsupportedFeature } from './to-chat.js';

/**
 * Request stage: read and validate the body, load the conversation a
 * `previous_response_id` continues (the key's team's records only), and
 * translate it all into the chat request the governance stages read. What
 * chat cannot carry is a 400 naming the parameter, before any upstream call.
 */
export async function parseResponses(ctx: RequestContext): Promise<void> {
  const request = parseResponsesRequest(await ctx.readBody());
  ctx.requestedModel = request.model;
  ctx.stream = request.stream === true;
  let previous: Awaited<ReturnType<typeof continueFrom>> = [];
  const prevId = request.previous_response_id;
  if (prevId) {
    const store = storeOf(ctx);
    previous = continueFrom(await store.get(ctx.key!.team, prevId), prevId);
  }
  // A background response the worker runs now: background is what queued it, not something to translate.
  const { chat, unsupported } = translateForGovernance(ctx.queued ? { ...request, background: undefined } : request, previous);
  // A gateway template (model "prompt:<name>") takes its variables as chat does.
  if (request.model.startsWith(PROMPT_MODEL_PREFIX) && request.variables !== undefined) chat.variables = request.variables;
  ctx.chat = chat;
  const id = ctx.queued?.kind === 'response' ? ctx.queued.owner : createItemId('resp');
  ctx.responses = { request, previous, chat, unsupported, id, createdAt: Math.floor(ctx.time / 1000) };
}

/**
 * Request stage: `background: true` stores the Response as `queued` and puts
 * the request on the work queue; the reply is that Response, at once. The
 * worker (queue/background.ts) runs the request through the whole pipeline
 * later, with this key's identity, and stores what it answered. The queued
 * record keeps hashes only: governance has not read the request yet.
 */
export async function queueBackground(ctx: RequestContext): Promise<Reply | undefined> {
  const turn = ctx.responses!;
  if (turn.request.background !== true || ctx.queued) return undefined;
  if (turn.request.store === false) throw new GatewayError('invalid_request', 'background responses must be stored; leave store out or set it to true.', { param: 'store' });
  if (turn.request.stream === true) throw new GatewayError('invalid_request', 'background responses cannot be streamed by this gateway; leave stream out and poll GET /v1/responses/{id}.', { param: 'stream' });
  const store = storeOf(ctx);
  const queue = ctx.services.queue;
  if (!queue) throw new GatewayError('service_unavailable', 'Background responses are not available in this process.');
  const key = ctx.key!;
  const response: ResponseObject = { ...responseSkeleton({ id: turn.id, createdAt: turn.createdAt, model: turn.request.model, request: turn.request }), status: 'queued' };
  const record = buildStoredRecord({ team: key.team, bodies: 'hash', previous: [], request: turn.request, response });
  const lane = ctx.config.policies.lanes.get(key.lane);
  await store.put(record, lane ? storedResponseTtlMs(lane) : DEFAULT_MAX_RETENTION_DAYS * 86_400_000);
  const work = await queue.store();
  await work.enqueue([{ id: turn.id, kind: 'response', owner: turn.id, index: 0, customId: turn.id, keyId: key.id, body: turn.request, enqueuedAt: Date.now() }]);
  turn.queued = true;
  return { kind: 'json', status: 200, body: response };
}

/**
 * The chat request the governance stages read. A request chat cannot carry
 * (hosted tools, reasoning summaries, truncation "auto"...) may still be
 * served by an upstream that speaks the Responses API: the governance stages
 * then read a chat copy without those settings, with each hosted tool as a
 * tool named by its type so the lane's tool policy allows, strips or refuses
 * it like any other; dispatch sends it natively or refuses it with the
 * translation's 400 (native.ts). Input chat cannot read (an item reference,
 * a file part) is refused here: detectors cannot judge what they cannot read.
 */
function translateForGovernance(request: ResponsesRequest, previous: ResponsesInputItem[]): { chat: ChatRequest; unsupported?: UnsupportedFeature } {
  const first = responsesToChat(request, { previous });
  if (first.ok) return { chat: first.chat };
  const unsupported = first.unsupported;
  const hosted = (request.tools ?? []).filter((t) => t.type !== 'function');
  const copy: Record<string, unknown> = { ...request, tools: (request.tools ?? []).filter((t) => t.type === 'function') };
  if (typeof request.tool_choice === 'object' && request.tool_choice.type !== 'function') delete copy.tool_choice;
  for (let round = 0; round < 16; round++) {
    const t = responsesToChat(copy as ResponsesRequest, { previous });
    if (t.ok) {
      const named = hosted.map((h) => ({ type: 'function' as const, function: { name: h.type } }));
      if (named.length > 0) t.chat.tools = [...(t.chat.tools ?? []), ...named];
      return { chat: t.chat, unsupported };
    }
    const field = t.unsupported.param.split(/[.[]/)[0]!;
    if (field === 'input' || field.startsWith('previous_response_id') || !(field in copy)) break;
    delete copy[field];
  }
  throw unsupportedError(unsupported);
}

function storeOf(ctx: RequestContext) {
  const store = ctx.services.responses;
  if (!store) throw new GatewayError('service_unavailable', 'Stored responses are not available in this process.');
  return store;
}

/**
 * Keeps the Response the client is about to get as `store` asks (OpenAI's
 * default: stored), for the key's team, no longer than the lane's audit
 * retention and with bodies only as its audit rule allows: a lane that keeps
 * hashes stores hashes, and so does a lane that keeps redacted bodies when
 * this request had something redacted (the stored conversation would
 * otherwise hold what the audit trail may not).
 *
 * It runs before the client sees the Response (the JSON reply, a stream's
 * terminal event), so a client that retrieves it or continues with
 * previous_response_id as soon as it has the answer finds it. A failed write
 * is logged and the answer still goes out: the model's work is paid for, and
 * the client can resend the conversation.
 */
export function storeTurn(ctx: RequestContext): Promise<void> | undefined {
  const turn = ctx.responses;
  const lane = ctx.policy?.lane;
  const store = ctx.services.responses;
  if (!turn?.response || turn.request.store === false || !lane || !ctx.key || !store) return undefined;
  const redacted = lane.audit.bodies === 'redacted' && (ctx.policy?.redactions ?? 0) > 0;
  const record = buildStoredRecord({
    team: ctx.key.team,
    bodies: redacted ? 'hash' : storedBodies(lane),
    previous: turn.previous,
    request: turn.request,
    response: turn.response,
  });
  // A background response's answer replaces its in_progress record only (a compare-and-set): one cancelled meanwhile stays cancelled.
  const stored =
    ctx.queued?.kind === 'response'
      ? store.update(record.team, record.id, (current) => (current.response.status === 'in_progress' ? record : undefined), storedResponseTtlMs(lane))
      : store.put(record, storedResponseTtlMs(lane));
  return stored.then(
    () => undefined,
    (err: unknown) => {
      ctx.services.logger.warn({ err, requestId: ctx.id, response: turn.id }, 'a response could not be stored; previous_response_id and GET /v1/responses will not find it');
    },
  );
}

/**
 * Reply stage, the last: a JSON reply becomes the Response (what the
 * renderer sends) and is stored before it is sent. A stream's Response is
 * stored by the renderer, before its terminal event (render.ts).
 */
export const storeResponse: ReplyStage = {
  name: 'storeResponse',
  json(ctx, reply) {
    // A queued background response was stored when it was queued; the worker's run stores its answer.
    if (reply.status >= 300 || !ctx.responses || ctx.responses.queued) return undefined;
    ctx.responses.response = chatToResponse(reply.body as ChatCompletion, responseMeta(ctx.responses));
    return storeTurn(ctx);
  },
};

/**
 * After stage, for a background response the worker ran (queuedPipelines in
 * pipeline/index.ts): its answer is stored only over the in_progress record
 * (a compare-and-set, storeTurn), so a cancel that came while it ran, or
 * lands as it ends, is never overwritten. Nobody is waiting
 * on this reply: there is no read-back race to store it earlier for.
 */
export const storeQueuedResponse: AfterStage = {
  name: 'storeResponse',
  run: (ctx) => storeTurn(ctx),
};
