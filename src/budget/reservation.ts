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
import type { KeyInfo } from '../config/compile.js';
import type { CompiledLimits } from './compile.js';
import type { BudgetConfig, RateLimitConfig } from './schema.js';
import type { Amount, CounterCheck } from './store.js';
import type { BudgetHold } from './types.js';

const MINUTE_TTL = 3 * 60_000;
const PERIOD_TTL: Record<Period, number> = { minute: MINUTE_TTL, day: 3 * 86_400_000, month: 62 * 86_400_000 };

function subjectOf(scope: string, key: KeyInfo): string {
  return scope === 'key' ? key.id : scope === 'app' ? key.app : scope === 'team' ? key.team : '*';
}

/**
 * What reserving needs of the config for one key: the rate limits and
 * budgets that apply to it (rates first, as the checks are ordered), their
 * names, the ids of their counters without the period, and their limits.
 * Worked out on the key's first request under a config, not on every one;
 * a reload compiles new limits and new keys, so plans are never stale.
 */
interface LimitPlan {
  rates: RateLimitConfig[];
  budgets: BudgetConfig[];
  /** Rates' then budgets' names. */
  names: string[];
  budgetNames: string[];
  rateBases: string[];
  rateLimits: Array<Partial<Amount>>;
  budgetBases: string[];
  budgetLimits: Array<Partial<Amount>>;
}

const plans = new WeakMap<CompiledLimits, WeakMap<KeyInfo, LimitPlan>>();

function planFor(limits: CompiledLimits, key: KeyInfo): LimitPlan {
  let byKey = plans.get(limits);
  if (!byKey) plans.set(limits, (byKey = new WeakMap()));
  let plan = byKey.get(key);
  if (plan) return plan;
  const applies = (r: { match?: string[] | undefined; scope: string }) => !r.match || r.match.includes(subjectOf(r.scope, key));
  const base = (kind: 'budget' | 'rate', r: { name: string; scope: string }) => `${kind}:${r.name}:${r.scope}:${encodeURIComponent(subjectOf(r.scope, key))}`;
  const rates = limits.rateLimits.filter(applies);
  const budgets = limits.budgets.filter(applies);
  const budgetNames = budgets.map((b) => b.name);
  plan = {
    rates,
    budgets,
    names: [...rates.map((r) => r.name), ...budgetNames],
    budgetNames,
    rateBases: rates.map((r) => base('rate', r)),
    rateLimits: rates.map((r) => ({ requests: r.requests_per_minute, tokens: r.tokens_per_minute })),
    budgetBases: budgets.map((b) => base('budget', b)),
    budgetLimits: budgets.map((b) => ({ usd: b.usd === undefined ? undefined : Math.round(b.usd * 1e9), tokens: b.tokens, requests: b.requests })),
  };
  byKey.set(key, plan);
  return plan;
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
  const plan = planFor(limits, ctx.key!);
  const { budgets, rates, names } = plan;
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
      for (let i = 0; i < rates.length; i++) {
        const base = plan.rateBases[i]!;
        checks.push({
          id: `${base}:${minute}`,
          previous: { id: `${base}:${previous}`, weight },
          ttlMs: PERIOD_TTL.minute,
          limit: plan.rateLimits[i]!,
          amount: rateAmount,
          // Reserved, not committed: settlement puts the tokens actually used in place of the worst case.
          commit: false,
        });
      }
    }
    for (let i = 0; i < budgets.length; i++) {
      const b = budgets[i]!;
      const base = plan.budgetBases[i]!;
      checks.push({
        id: `${base}:${periodId(b.period, now, limits.timezone)}`,
        ...(b.period === 'minute' ? { previous: { id: `${base}:${previousMinuteId(now)}`, weight: previousMinuteWeight(now) } } : {}),
        ttlMs: PERIOD_TTL[b.period],
        limit: plan.budgetLimits[i]!,
        amount,
        commit: false,
        // Only a day or month budget waits for a rebuild after the store lost its data.
        fromLedger: b.period !== 'minute',
      });
    }
    return checks;
  };
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
  ctx.budget = { reservation, store, budgetChecks: checks.slice(rates.length), counters, names: plan.budgetNames, price, promptTokens: prompt, reservedOutput: output, settled: false };
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
