// A request's whole life, per endpoint, in the order it happens. Each stage
// lives in its own module; adding one is a line here. See shared/DESIGN.md
// for why the order is what it is, and docs/architecture.md for the picture.
//
// Three phases, run by one runner (run.ts) for every caller: the HTTP
// server, `lanegate eval`, prompt shadow runs and `explain`.
//   request  stages up to a reply; a stage that returns one (a cache hit) ends the phase there.
//   reply    every reply goes through these, a cache hit's and a stream's too.
//            JSON: each stage's json part, in order, once.
//            Stream: each chunk passes the stages' stream parts in the order listed
//            (upstream -> meter -> guard -> cache tap), then the server's writer,
//            which sends it and feeds ctx.assembled (api/assemble.ts: the one
//            assembled answer the audit record, the cache entry and the trace read).
//   after    once the response is over (sent, failed or abandoned by the client), off the
//            client's path: slots given back, settlement, cache store, metrics, SLO, audit,
//            trace end, access log. A stage that leaves work in flight (settlement) logs its
//            own failure: nothing is lost silently.
//
// Authentication runs before the body is read, so an unauthenticated client
// cannot make the gateway buffer megabytes.
import { admitRequest, releaseAdmission } from '../admission/stage.js';
import { parseChatRequest, parseEmbeddingsRequest } from '../api/parse.js';
import { responsesRenderer } from '../api/responses/render.js';
import { parseResponses, queueBackground, storeQueuedResponse, storeResponse } from '../api/responses/stages.js';
import { carryPolicyToNative, countTokens, noteDroppedCacheMarkers, parseCountTokens, parseMessages } from '../api/messages/stage.js';
import { countTokensRenderer, messagesRenderer } from '../api/messages/render.js';
import { authenticate, authenticateAnthropic, authenticateQueued } from '../auth/stage.js';
import { enforceLimits, meterJsonReply, meterStreamReply } from '../budget/stage.js';
import { lookupChatCache, storeChatCache, tapChatCacheJson, tapChatCacheStream } from '../cache/chat-stage.js';
import { completeEmbeddings, lookupEmbeddingsCache, storeEmbeddings } from '../cache/embeddings-stage.js';
import { guardJsonReply, guardStreamReply } from '../policy/guard.js';
import { applyLanePolicy } from '../policy/lane.js';
import { renderPrompt, startShadowRun } from '../prompts/stage.js';
import { planCandidates } from '../routing/candidates.js';
import { dispatchChat, dispatchEmbeddings } from '../routing/dispatch.js';
import { resolveModel } from '../routing/resolve.js';
import { routeRequest } from '../routing/rules.js';
import { endTrace, priceAnswer, recordMetrics, recordSlo, recordSpend, settleSpend, timeRequest, writeAccessLog, writeAudit } from './finish.js';
import type { Endpoint } from './context.js';
import type { AfterStage, Pipeline, ReplyStage, RequestStage } from './stage.js';

// Request stages. `span`: the child span a traced request runs the stage in.
const auth: RequestStage = { name: 'authenticate', run: authenticate }; //            key -> app, team
const authAnthropic: RequestStage = { name: 'authenticate', run: authenticateAnthropic }; // the same, with the key in x-api-key too
const authQueued: RequestStage = { name: 'authenticate', run: authenticateQueued }; // queued work (batch lines, background responses): the key that queued it
const admit: RequestStage = { name: 'admitRequest', run: admitRequest }; //           global in-flight cap and bounded queue (before the body is read); a deployment's gate is per attempt
const parseChat: RequestStage = { name: 'parseChatRequest', run: parseChatRequest }; // read, parse, validate (zod)
const parseMessagesBody: RequestStage = { name: 'parseMessagesRequest', run: parseMessages }; // Anthropic Messages: validated, translated to chat for the stages; kept for Anthropic upstreams (ctx.native)
const parseCountTokensBody: RequestStage = { name: 'parseCountTokensRequest', run: parseCountTokens };
const parseEmbeddings: RequestStage = { name: 'parseEmbeddingsRequest', run: parseEmbeddingsRequest };
const parseResponsesIngress: RequestStage = { name: 'parseResponsesRequest', run: parseResponses }; // Responses request -> chat request (previous_response_id loaded for the team), unsupported features refused
const background: RequestStage = { name: 'queueBackground', run: queueBackground }; // background: true: stored as queued, put on the work queue, answered at once (the worker runs the rest)
const render: RequestStage = { name: 'renderPrompt', run: renderPrompt }; //          prompt template: pinned version, variables checked, rendered (lanes then scan the result)
const lanePolicy: RequestStage = { name: 'applyLanePolicy', span: 'lanegate.policy', run: applyLanePolicy }; // lane (key, header, detectors), block/redact, metadata, offered tools
const nativePolicy: RequestStage = { name: 'carryPolicyToNative', run: carryPolicyToNative }; // the lane's redactions and tool decisions on ctx.native too
const route: RequestStage = { name: 'routeRequest', run: routeRequest }; //           route rules: `auto` -> a model, by value
const resolve: RequestStage = { name: 'resolveModel', run: resolveModel }; //         model name -> configured model
const plan: RequestStage = { name: 'planCandidates', run: planCandidates }; //        balance its deployments, then its fallbacks, within the lane
const chatCache: RequestStage = { name: 'lookupChatCache', span: 'lanegate.cache', run: lookupChatCache }; // hit: reply here, nothing reserved; else wait for an identical request in flight
const embeddingsCache: RequestStage = { name: 'lookupEmbeddingsCache', span: 'lanegate.cache', run: lookupEmbeddingsCache }; // every input cached: reply here; else only the misses go upstream
const limits: RequestStage = { name: 'enforceLimits', span: 'lanegate.budget', run: enforceLimits }; // run limits, rate limits, reserve budgets (one store round trip)
const chatDispatch: RequestStage = { name: 'dispatchChat', run: dispatchChat }; //    call providers: retries, breakers, fallback, safe mode
const embeddingsDispatch: RequestStage = { name: 'dispatchEmbeddings', run: dispatchEmbeddings };
const tokenCount: RequestStage = { name: 'countTokens', run: countTokens }; //       count_tokens: the gateway's estimate

// Reply stages.
const meter: ReplyStage = { name: 'meterReply', json: meterJsonReply, stream: meterStreamReply }; // price the answer (run limit on tool calls); streams extend their reservation as they flow
const guard: ReplyStage = { name: 'guardResponse', json: guardJsonReply, stream: guardStreamReply }; // tool-call guard, approvals, restore redactions
const cacheTap: ReplyStage = { name: 'tapChatCache', json: tapChatCacheJson, stream: tapChatCacheStream }; // note a storable answer (streams: once they end cleanly)
const embeddingsBatch: ReplyStage = { name: 'completeEmbeddings', json: completeEmbeddings }; // put the batch back together in order, note the new vectors

// After stages.
const admissionSlot: AfterStage = { name: 'releaseAdmission', run: releaseAdmission }; // give the global slot back first
const chatStore: AfterStage = { name: 'storeChatCache', run: storeChatCache }; //       store the noted answer; settle the single flight either way
const embeddingsStore: AfterStage = { name: 'storeEmbeddings', run: storeEmbeddings };
const shadow: AfterStage = { name: 'startShadowRun', run: startShadowRun }; //        a sampled prompt's shadow run joins its queue
const cacheMarkers: AfterStage = { name: 'noteDroppedCacheMarkers', run: noteDroppedCacheMarkers }; // a translated Messages request: cache_control markers dropped, logged and counted

/** What every request records once it is over. */
const records: readonly AfterStage[] = [
  timeRequest, //  total time
  priceAnswer, //  streams and failures are priced from the usage they ended with
  recordSpend,
  settleSpend, //  release the reservation, record the spend (async, logged on failure)
  recordMetrics,
  recordSlo,
  writeAudit, //   with the trail on
  endTrace, //     with tracing on
  writeAccessLog,
];

export const chatPipeline: Pipeline = {
  endpoint: 'chat',
  request: [auth, admit, parseChat, render, lanePolicy, route, resolve, plan, chatCache, limits, chatDispatch],
  reply: [meter, guard, cacheTap],
  after: [admissionSlot, chatStore, shadow, ...records],
};

/**
 * POST /v1/responses: the chat pipeline with the Responses ingress at both
 * ends. The request is parsed into the same context (a chat request inside,
 * the Responses request beside it), so every governance stage applies
 * unchanged; the renderer gives the client a Response or its event stream.
 */
export const responsesPipeline: Pipeline = {
  endpoint: 'chat',
  ingress: 'responses',
  render: responsesRenderer,
  request: [auth, admit, parseResponsesIngress, background, render, lanePolicy, route, resolve, plan, chatCache, limits, chatDispatch],
  // storeResponse: the Response, stored per `store` (team, lane's retention and audit rule) before the client sees it (a stream's: before its terminal event)
  reply: [meter, guard, cacheTap, storeResponse],
  after: [admissionSlot, chatStore, shadow, ...records],
};

export const embeddingsPipeline: Pipeline = {
  endpoint: 'embeddings',
  request: [auth, admit, parseEmbeddings, lanePolicy, route, resolve, plan, embeddingsCache, limits, embeddingsDispatch],
  reply: [meter, embeddingsBatch],
  after: [admissionSlot, embeddingsStore, ...records],
};

/**
 * Work from the durable queue (src/queue/worker.ts): batch lines and
 * background responses. The same lives as the interactive endpoints', with
 * the key that queued the work in place of a presented one, and the global
 * slot taken at the lowest priority (`batch`) so queued work only uses
 * capacity no client is waiting for. The worker renders the reply into the
 * batch's output line or the stored Response; the audit record's run_id is
 * the batch (or response) id.
 */
export const queuedPipelines = {
  chat: {
    endpoint: 'chat',
    request: [authQueued, admit, parseChat, render, lanePolicy, route, resolve, plan, chatCache, limits, chatDispatch],
    reply: [meter, guard, cacheTap],
    after: [admissionSlot, chatStore, ...records],
  },
  embeddings: {
    endpoint: 'embeddings',
    request: [authQueued, admit, parseEmbeddings, lanePolicy, route, resolve, plan, embeddingsCache, limits, embeddingsDispatch],
    reply: [meter, embeddingsBatch],
    after: [admissionSlot, embeddingsStore, ...records],
  },
  responses: {
    endpoint: 'chat',
    ingress: 'responses',
    render: responsesRenderer,
    request: [authQueued, admit, parseResponsesIngress, render, lanePolicy, route, resolve, plan, chatCache, limits, chatDispatch],
    reply: [meter, guard, cacheTap],
    after: [admissionSlot, storeQueuedResponse, chatStore, ...records],
  },
} as const satisfies Record<string, Pipeline>;

/**
 * Anthropic's Messages API (POST /v1/messages): the chat life, between its
 * own parse and its own reply shape (api/messages/render.ts). An Anthropic
 * upstream gets the Messages request itself (ctx.native), any other the chat
 * translation; every stage in between sees the chat form either way.
 */
export const messagesPipeline: Pipeline = {
  endpoint: 'messages',
  render: messagesRenderer,
  request: [authAnthropic, admit, parseMessagesBody, render, lanePolicy, nativePolicy, route, resolve, plan, chatCache, limits, chatDispatch],
  reply: [meter, guard, cacheTap],
  after: [admissionSlot, chatStore, shadow, cacheMarkers, ...records],
};

/** POST /v1/messages/count_tokens: the same policy up to the model, then a count; nothing reaches a model, so nothing is reserved. */
export const countTokensPipeline: Pipeline = {
  endpoint: 'count_tokens',
  render: countTokensRenderer,
  request: [authAnthropic, admit, parseCountTokensBody, lanePolicy, nativePolicy, route, resolve, plan, tokenCount],
  reply: [],
  after: [admissionSlot, ...records],
};

/**
 * `explain` (POST /admin/policy/explain, `lanegate explain`): what the
 * policies would do with a request, without calling any provider. A prefix of
 * each endpoint's request stages, minus the ones about the caller (the key is
 * given) and capacity: the body as the app sent it (a template rendered), then
 * the policy up to the candidates. Explain notes the offered tools in between.
 */
export const explainStages = {
  parse: { chat: [parseChat, render], embeddings: [parseEmbeddings], messages: [parseMessagesBody, render], count_tokens: [parseCountTokensBody] },
  policy: [lanePolicy, route, resolve, plan],
} as const satisfies { parse: Record<Endpoint, readonly RequestStage[]>; policy: readonly RequestStage[] };

const internalRequest: readonly RequestStage[] = [parseChat, render, lanePolicy, route, resolve, plan, limits, chatDispatch];

/**
 * Requests the gateway makes itself (`lanegate eval`): the caller sets the
 * identity (there is no key to check), the answer is what the model said (no
 * response guard, so no approvals are ever created), nothing is cached
 * either way. The caller waits for settlement, and collects the request
 * record (identity _eval) to write to the _eval chain: eval calls spend real money.
 */
export const internalChatPipeline: Pipeline = {
  endpoint: 'chat',
  request: internalRequest,
  reply: [meter],
  after: [priceAnswer, settleSpend, writeAudit],
};

/**
 * Prompt shadow runs: as internalChatPipeline, but spend counts under the
 * shadow identity and the request record goes to the lane's trail (beside
 * the shadow runner's own shadow_run record).
 */
export const shadowChatPipeline: Pipeline = {
  endpoint: 'chat',
  request: internalRequest,
  reply: [meter],
  after: [priceAnswer, settleSpend, recordSpend, writeAudit],
};
