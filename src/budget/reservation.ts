// Reservation: rate limits and budgets reserved together in one store call
// (one Redis round trip) for the worst case, before the upstream call.
// Streams reserve a first slice of their budgets, which stream metering
// extends as tokens flow (token rate limits hold the whole worst case from
// the start, as OpenAI counts them). After the reply, settlement (off the
// client's path) replaces every reservation, budgets' and rate limits'
// alike, with what was actually used.
import { randomBytes } from 'node:crypto';
import { GatewayError } from '../errors.js';
import type { RequestContext } from '../pipeline/context.js';
import { embeddingTokenEstimate, promptTokenBound, promptTokens } from '../providers/tokens.js';
import { periodId, previousMinuteId, previousMinuteWeight, type Period } from './periods.js';
import { costNano } from './pricing.js';
import { rateLimitHeaders } from './rate-headers.js';
import { limitRefusal } from './refusal.js';
import type { Amount, CounterCheck } from './store.js';
import type { BudgetHold } from './types.js';

const MINUTE_TTL = 3 * 60_000;
const PERIOD_TTL: Record<Period, number> = { minute: MINUTE_TTL, day: 3 * 86_400_000, month: 62 * 86_400_000 };

function subjectOf(scope: string, ctx: RequestContext): string {
  const key = ctx.key!;
  return scope === 'key' ? key.id : scope === 'app' ? key.app : scope === 'team' ? key.team : '*';
}

// A counter's id without its period, per rule and subject: built once, not per request.
const counterBases = new WeakMap<object, Map<string, string>>();

function counterBase(rule: object, kind: 'budget' | 'rate', name: string, scope: string, subject: string): string {
  let bases = counterBases.get(rule);
  if (!bases) counterBases.set(rule, (bases = new Map()));
  let base = bases.get(subject);
  if (base === undefined) {
    base = `${kind}:${name}:${scope}:${encodeURIComponent(subject)}`;
    if (bases.size >= 10_000) bases.clear(); // subjects come from config (keys, apps, teams): this never fills in practice
    bases.set(subject, base);
  }
  return base;
}

// Reservation ids: unique across replicas (the random part) without a UUID per request.
const RESERVATION_PREFIX = `${randomBytes(9).toString('base64url')}.`;
let reservationSeq = 0;

function reservationId(): string {
  return RESERVATION_PREFIX + (++reservationSeq).toString(36);
}

/** Reserves the worst case against every rate limit and budget that applies; refuses with the one that has no room. */
export async function reserveLimits(ctx: RequestContext): Promise<void> {
  const limits = ctx.config.limits;
  const now = Date.now();
  const budgets = limits.budgets.filter((b) => !b.match || b.match.includes(subjectOf(b.scope, ctx)));
  const rates = limits.rateLimits.filter((r) => !r.match || r.match.includes(subjectOf(r.scope, ctx)));
  if (budgets.length === 0 && rates.length === 0) return;

  // Worst case: the dearest candidate, the longest answer allowed, and the prompt bounded by its
  // size in bytes (a token is at least one byte). Only when that does not fit is the prompt
  // counted exactly with tiktoken and the reservation tried again.
  const prices = ctx.candidates.map((d) => limits.prices.priceOf(d));
  const price = prices.reduce((a, b) => (b.output + b.input > a.output + a.input ? b : a), prices[0]!);
  const requested = ctx.chat?.max_completion_tokens ?? ctx.chat?.max_tokens ?? undefined;
  const maxOutput = ctx.endpoint === 'embeddings' ? 0 : (requested ?? price.maxOutputTokens) * (ctx.chat?.n ?? 1);
  const output = ctx.stream ? Math.min(maxOutput, limits.streamSliceTokens) : maxOutput;
  // A prompt with cache_control markers (Anthropic) may be written to the provider's cache
  // whole, which costs more than plain input: its worst case is priced at that rate.
  const cacheWrite = (ctx.messages?.droppedCacheMarkers ?? 0) > 0;
  const build = (prompt: number) => {
    const usage = { prompt_tokens: prompt, completion_tokens: output, ...(cacheWrite ? { prompt_tokens_details: { cache_write_tokens: prompt } } : {}) };
    const amount: Amount = { usd: costNano(price, usage), tokens: prompt + output, requests: 1 };
    const checks: CounterCheck[] = [];
    if (rates.length > 0) {
      const minute = periodId('minute', now, limits.timezone);
      const previous = previousMinuteId(now);
      const weight = previousMinuteWeight(now);
      const rateAmount: Amount = { usd: 0, tokens: prompt + maxOutput, requests: 1 };
      for (const r of rates) {
        const base = counterBase(r, 'rate', r.name, r.scope, subjectOf(r.scope, ctx));
        checks.push({
          id: `${base}:${minute}`,
          previous: { id: `${base}:${previous}`, weight },
          ttlMs: PERIOD_TTL.minute,
          limit: { requests: r.requests_per_minute, tokens: r.tokens_per_minute },
          amount: rateAmount,
          // Reserved, not committed: settlement puts the tokens actually used in place of the worst case.
          commit: false,
        });
      }
    }
    for (const b of budgets) {
      const base = counterBase(b, 'budget', b.name, b.scope, subjectOf(b.scope, ctx));
      checks.push({
        id: `${base}:${periodId(b.period, now, limits.timezone)}`,
        ...(b.period === 'minute' ? { previous: { id: `${base}:${previousMinuteId(now)}`, weight: previousMinuteWeight(now) } } : {}),
        ttlMs: PERIOD_TTL[b.period],
        limit: { usd: b.usd === undefined ? undefined : Math.round(b.usd * 1e9), tokens: b.tokens, requests: b.requests },
        amount,
        commit: false,
        // Only a day or month budget waits for a rebuild after the store lost its data.
        fromLedger: b.period !== 'minute',
      });
    }
    return checks;
  };
  const names = [...rates.map((r) => r.name), ...budgets.map((b) => b.name)];
  let prompt = ctx.chat ? promptTokenBound(ctx.chat) : embeddingTokenEstimate(ctx.embeddings?.input);
  let checks = build(prompt);
  const counters: BudgetHold['counters'] = checks.map((c, i) => ({ id: c.id, ttlMs: c.ttlMs, kind: i < rates.length ? 'rate' : 'budget' }));

  const services = ctx.services.budget;
  const reservation = reservationId();
  const expiresAt = now + limits.reservationTtlMs;
  let store = services.store;
  let result;
  try {
    result = await store.reserve(reservation, checks, expiresAt, now);
    if (!result.ok && result.reset) {
      await services.rebuild(store);
      result = await store.reserve(reservation, checks, expiresAt, now);
    }
  } catch (err) {
    if (err instanceof GatewayError) {
      // budget_unavailable: the store lost its counters, and only an operator can restore them all.
      if (err.code === 'budget_unavailable') ctx.services.metrics.budgetUnavailable.inc();
      throw err;
    }
    // The shared store is unreachable: each budget's own choice decides.
    const closed = budgets.some((b) => (b.on_store_error ?? (b.usd !== undefined ? 'fail_closed' : 'fail_open')) === 'fail_closed');
    ctx.services.metrics.budgetStoreErrors.labels(closed ? 'fail_closed' : 'fail_open').inc();
    services.reportStoreError(err, closed ? 'fail_closed' : 'fail_open');
    if (closed) {
      throw new GatewayError('service_unavailable', 'Budgets cannot be checked right now (the budget store is unreachable), so nothing was sent upstream. Retry shortly.', {
        retryAfter: 1,
        cause: err,
      });
    }
    store = services.fallback;
    result = await store.reserve(reservation, checks, expiresAt, now);
  }
  if (!result.ok && !result.reset && result.dimension !== 'requests' && ctx.chat) {
    const exact = await promptTokens(ctx);
    if (exact < prompt) {
      prompt = exact;
      checks = build(prompt);
      result = await store.reserve(reservation, checks, expiresAt, now);
    }
  }
  if (!result.ok) {
    if (result.reset) throw new GatewayError('service_unavailable', 'Budgets are being rebuilt from the usage ledger. Retry in a moment.', { retryAfter: 1 });
    throw limitRefusal(ctx, checks, names, result, rates.length, now);
  }
  if (rates.length > 0) Object.assign(ctx.responseHeaders, rateLimitHeaders(checks.slice(0, rates.length), result.windows, now));
  ctx.budget = { reservation, store, budgetChecks: checks.slice(rates.length), counters, names: names.slice(rates.length), price, promptTokens: prompt, reservedOutput: output, settled: false };
}

/**
 * After the reply: release the reservation and record what was actually
 * spent. A budget counts a request that got an answer; a rate limit counts
 * every admitted request, and the tokens actually used.
 */
export async function settleBudget(ctx: RequestContext): Promise<void> {
  const hold = ctx.budget;
  if (!hold || hold.settled) return;
  hold.settled = true;
  const cost = ctx.cost?.nano ?? 0;
  const tokens = ctx.usage?.total_tokens ?? 0;
  const succeeded = ctx.usage !== undefined;
  const budget: Amount = { usd: cost, tokens, requests: succeeded ? 1 : 0 };
  const rate: Amount = { usd: 0, tokens, requests: 1 };
  await hold.store.settle(
    hold.reservation,
    hold.counters.map((c) => ({ id: c.id, ttlMs: c.ttlMs, actual: c.kind === 'rate' ? rate : budget })),
    Date.now(),
  );
}
