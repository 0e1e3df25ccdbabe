// The pipeline, in order. Each stage lives in its own module; adding one is a
// line here. See shared/DESIGN.md for why the order is what it is.
//
// Authentication runs before the body is read, so an unauthenticated client
// cannot make the gateway buffer megabytes.
import { admitRequest } from '../admission/stage.js';
import { parseChatRequest, parseEmbeddingsRequest } from '../api/parse.js';
import { authenticate } from '../auth/stage.js';
import { enforceLimits, meterReply } from '../budget/stage.js';
import { lookupChatCache, storeChatCache } from '../cache/chat-stage.js';
import { completeEmbeddings, lookupEmbeddingsCache } from '../cache/embeddings-stage.js';
import { guardResponse } from '../policy/guard.js';
import { applyLanePolicy } from '../policy/lane.js';
import { renderPrompt } from '../prompts/stage.js';
import { planCandidates } from '../routing/candidates.js';
import { dispatchChat, dispatchEmbeddings } from '../routing/dispatch.js';
import { resolveModel } from '../routing/resolve.js';
import { routeRequest } from '../routing/rules.js';
import type { Stage } from './context.js';

export const chatPipeline: readonly Stage[] = [
  authenticate, //       key -> app, team
  admitRequest, //       global in-flight cap and bounded queue (before the body is read); a deployment's gate is per attempt
  parseChatRequest, //   read, parse, validate (zod)
  renderPrompt, //       prompt template: pinned version, variables checked, rendered (lanes then scan the result)
  applyLanePolicy, //    lane (key, header, detectors), block/redact, metadata, offered tools
  routeRequest, //       route rules: `auto` -> a model, by value
  resolveModel, //       model name -> configured model
  planCandidates, //     balance its deployments, then its fallbacks, within the lane
  lookupChatCache, //    cache hit: reply here, nothing reserved; else wait for an identical request in flight
  enforceLimits, //      run limits, rate limits, reserve budgets (one store round trip)
  dispatchChat, //       call providers: retries, breakers, fallback, safe mode
  meterReply, //         price the answer; streams extend their reservation as they flow
  guardResponse, //      tool-call guard, approvals, restore redactions
  storeChatCache, //     store the complete answer (streams: once they end cleanly), off the client's path
];

export const embeddingsPipeline: readonly Stage[] = [
  authenticate,
  admitRequest,
  parseEmbeddingsRequest,
  applyLanePolicy,
  routeRequest,
  resolveModel,
  planCandidates,
  lookupEmbeddingsCache, // every input cached: reply here; else only the misses go upstream
  enforceLimits,
  dispatchEmbeddings,
  meterReply,
  completeEmbeddings, //  store the new vectors, reassemble the batch in order
];

/**
 * Requests the gateway makes itself (prompt shadow runs, `lanegate eval`): the
 * caller sets the identity (there is no key to check), the answer is what the
 * model said (no response guard, so no approvals are ever created), and
 * nothing is cached either way.
 */
export const internalChatPipeline: readonly Stage[] = [
  parseChatRequest,
  renderPrompt,
  applyLanePolicy,
  routeRequest,
  resolveModel,
  planCandidates,
  enforceLimits,
  dispatchChat,
  meterReply,
];
