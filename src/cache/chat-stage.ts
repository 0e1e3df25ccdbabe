// Pipeline stages of the chat response cache. `lookupChatCache` runs after
// routing and before limits and budgets: a hit ends the request phase there,
// so it reserves and costs nothing upstream. `tapChatCache` is the last reply
// stage: it takes note of the answer the client got (a stream's once it ended
// cleanly). `storeChatCache`, an after stage, stores it off the client's path
// and settles the single flight this request leads. What they share about the
// request is ctx.chatCache and ctx.cacheFlight.
import type { ChatChunk, ChatCompletion, ChatRequest, Usage } from '../api/schemas.js';
import { formatUsd } from '../budget/pricing.js';
import type { Reply, RequestContext } from '../pipeline/context.js';
import type { JsonReply } from '../pipeline/stage.js';
import { decideCacheUse, reportOutcome } from './decide.js';
import { decodeChatEntry, ENTRY_FORMAT, isCompleteCompletion, type ChatEntry } from './entry.js';
import { chatKeyHash } from './keys.js';
import { cacheLabels, recordSavings } from './savings.js';
import type { CacheService } from './service.js';
import type { PendingChatStore } from './pending.js';
import { StreamAssembler } from '../api/assemble.js';
import { completionToChunks, replayChunks } from './stream.js';
import type { EntryKey } from './store.js';

/**
 * A leader always settles its flight when its request ends; this only keeps
 * a bug from pinning a flight forever. Longer than any upstream call lasts.
 */
const LEADER_GIVE_UP_MS = 15 * 60_000;

/**
 * Sampling makes these vary from call to call. An unset temperature is the
 * provider's default (1 for OpenAI and Anthropic), unless the deployment's
 * params set one.
 */
function isNondeterministic(ctx: RequestContext, chat: ChatRequest): boolean {
  const params = ctx.candidates[0]?.params ?? {};
  const n = chat.n ?? (typeof params.n === 'number' ? params.n : 1);
  if (n > 1) return true;
  const temperature = chat.temperature ?? (typeof params.temperature === 'number' ? params.temperature : undefined);
  if (temperature === 0) return false;
  const seed = chat.seed ?? params.seed;
  return seed === undefined || seed === null;
}

/** Pipeline stage: answer from the cache, wait for an identical request in flight, or note what to store. */
export async function lookupChatCache(ctx: RequestContext): Promise<Reply | void> {
  const use = decideCacheUse(ctx);
  if (use === undefined || use === 'bypass') return;
  const { cache, settings, rule, scope, scopeKind } = use;
  const chat = ctx.chat!;
  if (!rule.allowNondeterministic && isNondeterministic(ctx, chat)) {
    reportOutcome(ctx, cache, { status: 'bypass', reason: 'nondeterministic', scope: scopeKind });
    return;
  }

  const hash = chatKeyHash(ctx, chat, scope);
  const key: EntryKey = { kind: 'chat', scope, model: ctx.model!.name, hash };
  const expected = { scope, lane: ctx.lane ?? '' };
  const outcome = { scope: scopeKind, key: hash.slice(0, 12) };

  // The flight is joined before the lookup: identical requests arriving
  // together wait for the first one's lookup and, on a miss, its answer.
  let reason = use.reason;
  let settle: PendingChatStore['settle'];
  const joined = cache.flights.join(`chat\u0000${scope}\u0000${key.model}\u0000${hash}`, LEADER_GIVE_UP_MS);
  if (joined.role === 'leader') {
    settle = joined.settle;
    // Whatever ends this request (an error, a refusal, a client gone), its
    // followers stop waiting: storeChatCache settles the flight when it is over.
    ctx.cacheFlight = joined.settle;
    if (use.mode === 'use') {
      const raw = await cache.store.get(key);
      if (raw !== undefined) {
        const decoded = decodeChatEntry(raw, expected);
        if (decoded.ok) {
          joined.settle(raw);
          return serveHit(ctx, cache, decoded.entry, outcome);
        }
        cache.discard(key, decoded.reason);
      }
    }
  } else if (use.mode === 'use') {
    // A refresh never waits: it asked for a fresh answer.
    const result = await joined.wait(settings.singleFlightTimeoutMs, ctx.cancel);
    cache.metrics.singleFlight.labels(result.kind === 'value' ? 'served' : result.kind).inc();
    if (result.kind === 'value') {
      const decoded = decodeChatEntry(result.value, expected);
      if (decoded.ok) return serveHit(ctx, cache, decoded.entry, { ...outcome, reason: 'single_flight' });
    }
    // No answer to share (it failed or was not cacheable) or it took too long: ask upstream.
    reason = `single_flight_${result.kind}`;
  }

  ctx.chatCache = { cache, key, lane: expected.lane, ttlMs: rule.ttlMs, maxEntryBytes: settings.maxEntryBytes, settle, answer: undefined, committing: false, done: false };
  reportOutcome(ctx, cache, { status: 'miss', ...outcome, ...(reason ? { reason } : {}) });
}

/** The entry is the upstream's answer: the reply stages still run on it (this request's lane judges its tool calls and restores its redactions). */
function serveHit(ctx: RequestContext, cache: CacheService, entry: ChatEntry, outcome: { scope: 'shared' | 'team' | 'key'; key: string; reason?: string }): Reply {
  const age = Math.max(0, Math.floor((Date.now() - entry.created_at) / 1000));
  reportOutcome(ctx, cache, { status: 'hit', ...outcome, age });
  const completion = entry.completion;
  // The answer's usage is recorded; its cost is zero, and no budget was reserved.
  ctx.usage = completion.usage;
  ctx.cost = { nano: 0, usd: 0, priced: true };
  ctx.responseHeaders['x-gateway-cost-usd'] = formatUsd(0);
  recordSavings(cache, ctx, entry.deployment, completion.usage);
  ctx.reply = ctx.stream
    ? { kind: 'stream', chunks: replayChunks(completionToChunks(completion)), includeUsage: ctx.chat?.stream_options?.include_usage === true }
    : { kind: 'json', status: 200, body: completion };
  return ctx.reply;
}

/** Reply stage, JSON part: takes note of a cacheable answer for the after phase. */
export function tapChatCacheJson(ctx: RequestContext, reply: JsonReply): void {
  const pending = ctx.chatCache;
  if (!pending) return;
  const refused = refusal(ctx) ?? (reply.status === 200 ? undefined : 'status');
  if (refused) return abandon(pending, refused);
  pending.answer = reply.body;
  pending.committing = true;
}

/**
 * Reply stage, stream part: once the stream ended cleanly, takes note of the
 * assembled answer. The chunks are assembled once for everyone who needs
 * them (ctx.assembled, fed by the server's writer as each one is sent).
 */
export function tapChatCacheStream(ctx: RequestContext, chunks: AsyncIterable<ChatChunk>): AsyncIterable<ChatChunk> {
  const pending = ctx.chatCache;
  if (!pending) return chunks;
  const assembler = (ctx.assembled ??= new StreamAssembler());
  return recordStream(ctx, pending, assembler, chunks);
}

async function* recordStream(ctx: RequestContext, pending: PendingChatStore, assembler: StreamAssembler, chunks: AsyncIterable<ChatChunk>) {
  let clean = false;
  try {
    yield* chunks;
    clean = true;
  } finally {
    // Cut, failed or abandoned by the client: nothing is stored.
    if (!clean) abandon(pending, 'incomplete');
  }
  const completion = assembler.storable();
  const refused = completion ? refusal(ctx) : 'incomplete';
  if (refused) return abandon(pending, refused);
  pending.answer = completion;
  pending.committing = true;
}

/** After stage: stores the answer the tap accepted, and settles the flight this request leads either way. */
export function storeChatCache(ctx: RequestContext): void {
  const pending = ctx.chatCache;
  if (pending?.committing) commit(ctx, pending, pending.answer);
  // Settling twice is a no-op: an answer stored above has settled it already.
  ctx.cacheFlight?.(undefined);
}

/** Why this answer must not be stored, if it must not. */
function refusal(ctx: RequestContext): string | undefined {
  if (ctx.error) return 'error';
  if (ctx.cancel.aborted) return 'aborted';
  if (ctx.degraded) return 'degraded';
  const policy = ctx.policy;
  if (policy?.approvals.length) return 'approvals';
  if (policy?.blockedToolCalls.length) return 'blocked_tool_calls';
  // The answer holds this request's own restored values, which its key (built from the redacted request) cannot tell apart.
  if (policy?.restore?.size) return 'restored_redactions';
  // Run limits trimmed the answer for this key.
  if ((ctx as { maxToolCalls?: number }).maxToolCalls !== undefined) return 'run_limits';
  return undefined;
}

function commit(ctx: RequestContext, pending: PendingChatStore, body: unknown): void {
  if (pending.done) return;
  if (!isCompleteCompletion(body)) return abandon(pending, 'incomplete');
  // A later stage may have changed the request (a run limit capping max_tokens): the answer is then not the one the key names.
  if (chatKeyHash(ctx, ctx.chat!, pending.key.scope) !== pending.key.hash) return abandon(pending, 'request_changed');
  const entry: ChatEntry = {
    v: ENTRY_FORMAT,
    kind: 'chat',
    scope: pending.key.scope,
    lane: pending.lane,
    model: pending.key.model,
    deployment: ctx.deployment?.id ?? '',
    created_at: Date.now(),
    completion: body as ChatCompletion & { usage: Usage },
  };
  const value = JSON.stringify(entry);
  if (Buffer.byteLength(value) > pending.maxEntryBytes) return abandon(pending, 'oversized');
  pending.done = true;
  pending.settle?.(value);
  pending.cache.write([{ key: pending.key, value, ttlMs: pending.ttlMs }], { endpoint: 'chat', ...cacheLabels(ctx) });
}

function abandon(pending: PendingChatStore, reason: string): void {
  if (pending.done) return;
  pending.done = true;
  pending.settle?.(undefined);
  pending.cache.metrics.notStored.labels('chat', reason).inc();
}
