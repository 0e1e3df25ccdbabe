// Pipeline stages for what a request may cost. Before the upstream call:
// run limits, then rate limits and budgets together in one store call (one
// Redis round trip) that reserves the worst case. Streams reserve a first
// slice of their budgets and extend it in steps as tokens flow (token rate
// limits hold the whole worst case from the start, as OpenAI counts them).
// After the reply, settlement (off the client's path) replaces every
// reservation, budgets' and rate limits' alike, with what was actually used.
import { randomBytes } from 'node:crypto';
import type { ChatChunk } from '../api/schemas.js';
import { GatewayError } from '../errors.js';
import type { Reply, RequestContext } from '../pipeline/context.js';
import { promptTokenBound } from '../providers/tokens.js';
import { promptTokens } from '../routing/rules.js';
import { periodEnd, periodId, previousMinuteId, previousMinuteWeight, type Period } from './periods.js';
import { costNano, formatUsd, type Price } from './pricing.js';
import { formatWait, rollingAdmission, rollingRemaining } from './rolling-admission.js';
import type { BudgetConfig, RateLimitConfig } from './schema.js';
import type { StoreErrorMode } from './store-errors.js';
import type { Amount, BudgetStore, CounterCheck, Dimension, ReserveResult } from './store.js';

export interface BudgetHold {
  reservation: string;
  store: BudgetStore;
  /** Budgets' checks: what a stream extends as it flows. */
  budgetChecks: CounterCheck[];
  /** Every counter the reservation holds, and which kind of limit it is: what settlement updates. */
  counters: Array<{ id: string; ttlMs: number; kind: 'budget' | 'rate' }>;
  names: string[];
  price: Price;
  promptTokens: number;
  /** Output tokens reserved so far. */
  reservedOutput: number;
  settled: boolean;
}

export interface BudgetServices {
  store: BudgetStore;
  /** Local accounting for fail-open budgets while the shared store is unreachable. */
  fallback: BudgetStore;
  /**
   * Rebuilds counters from the usage ledger after the store lost its data, or
   * (a shared store whose loss only an operator can repair) throws
   * budget_unavailable.
   */
  rebuild(store: BudgetStore): Promise<void>;
  concurrency: Map<string, number>;
  /** Logs why the store failed (rate-limited). */
  reportStoreError(err: unknown, mode: StoreErrorMode): void;
  close(): void;
}

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

/** Pipeline stage: run limits, rate limits and budget reservation, before the upstream call. */
export async function enforceLimits(ctx: RequestContext): Promise<void> {
  const limits = ctx.config.limits;
  if (limits.empty) return;
  applyRunLimits(ctx);

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
  const build = (prompt: number) => {
    const amount: Amount = { usd: costNano(price, { prompt_tokens: prompt, completion_tokens: output }), tokens: prompt + output, requests: 1 };
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
  let prompt = ctx.chat ? promptTokenBound(ctx.chat) : embeddingTokens(ctx);
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
    throw refusal(ctx, checks, names, result, rates.length, now);
  }
  ctx.budget = { reservation, store, budgetChecks: checks.slice(rates.length), counters, names: names.slice(rates.length), price, promptTokens: prompt, reservedOutput: output, settled: false };
}

function refusal(ctx: RequestContext, checks: CounterCheck[], names: string[], result: Extract<ReserveResult, { ok: false; reset: false }>, rateCount: number, now: number): GatewayError {
  const limits = ctx.config.limits;
  const { index, dimension, limit, used } = result;
  const check = checks[index]!;
  const name = names[index]!;
  const show = (v: number) => (dimension === 'usd' ? `$${formatUsd(v)}` : `${v} ${dimension}`);
  if (index < rateCount) {
    ctx.services.metrics.limitRefusals.labels('rate_limit', name).inc();
    return rateRefusal(checks, result, name, now);
  }
  const budget = limits.budgets.find((b) => b.name === name)!;
  const reset = periodEnd(budget.period, now, limits.timezone);
  ctx.services.metrics.limitRefusals.labels('budget', name).inc();
  return new GatewayError(
    'budget_exceeded',
    `Budget "${name}" (${budget.scope}, per ${budget.period}) would be exceeded: ${show(used)} of ${show(limit)} used or reserved, this request needs up to ${show(check.amount[dimension])}. It resets at ${new Date(reset).toISOString()}.`,
    { retryAfter: Math.max(1, Math.ceil((reset - now) / 1000)), headers: { 'x-gateway-budget': name } },
  );
}

const RATE_HEADER: Partial<Record<Dimension, string>> = { requests: 'requests', tokens: 'tokens' };

/**
 * A rate limit's refusal says when the rolling window will really admit this
 * request (nothing else arriving meanwhile): `retry-after` in whole seconds
 * (rounded up, as the header allows no less), `retry-after-ms` (which the
 * OpenAI SDKs prefer) and `x-ratelimit-reset-*` to the millisecond.
 */
function rateRefusal(checks: CounterCheck[], result: Extract<ReserveResult, { ok: false; reset: false }>, name: string, now: number): GatewayError {
  const check = checks[result.index]!;
  const window = result.windows[result.index]!;
  const admitted = rollingAdmission(check, window, now);
  // Every rolling counter must have room, not only the one that refused.
  let at = now;
  for (const [i, c] of checks.entries()) {
    if (!c.previous) continue;
    for (const t of Object.values(rollingAdmission(c, result.windows[i]!, now))) at = Math.max(at, t);
  }
  const kind = result.dimension === 'tokens' ? 'tokens' : 'requests';
  const limitText = `${result.limit} ${kind} per minute`;
  if (at === Infinity) {
    return new GatewayError('rate_limited', `Rate limit "${name}" (${limitText}) is lower than this request alone needs (${check.amount[result.dimension]} ${kind}): lower max_tokens or shorten the prompt.`, {
      // Waiting never helps: the SDKs must not retry it.
      headers: { [`x-ratelimit-limit-${kind}`]: String(result.limit), 'x-should-retry': 'false' },
    });
  }
  const waitMs = Math.max(1, at - now);
  const seconds = Math.ceil(waitMs / 1000);
  const headers: Record<string, string> = { 'retry-after-ms': String(waitMs) };
  const remaining = rollingRemaining(check, window, now);
  for (const [d, header] of Object.entries(RATE_HEADER) as Array<[Dimension, string]>) {
    const dimLimit = check.limit[d];
    if (dimLimit === undefined) continue;
    headers[`x-ratelimit-limit-${header}`] = String(dimLimit);
    headers[`x-ratelimit-remaining-${header}`] = String(remaining[d] ?? 0);
    const dimAt = admitted[d];
    if (dimAt !== undefined && dimAt !== Infinity) headers[`x-ratelimit-reset-${header}`] = formatWait(Math.max(0, dimAt - now));
  }
  return new GatewayError('rate_limited', `Rate limit "${name}" reached: ${limitText}. Retry after ${formatWait(waitMs)}.`, { retryAfter: seconds, headers });
}

function embeddingTokens(ctx: RequestContext): number {
  const input = ctx.embeddings?.input;
  if (typeof input === 'string') return Math.ceil(Buffer.byteLength(input) / 2);
  if (!Array.isArray(input)) return 0;
  let n = 0;
  for (const item of input) n += typeof item === 'string' ? Math.ceil(Buffer.byteLength(item) / 2) : Array.isArray(item) ? item.length : 1;
  return n;
}

function applyRunLimits(ctx: RequestContext): void {
  const limits = ctx.config.limits.runLimits;
  if (limits.length === 0) return;
  const chat = ctx.chat;
  const route = ctx.route?.name ?? ctx.requestedModel;
  for (const l of limits) {
    if (l.keys && !l.keys.includes(ctx.key!.id)) continue;
    if (l.routes && (!route || !l.routes.includes(route))) continue;
    if (l.max_tools !== undefined && (chat?.tools?.length ?? 0) > l.max_tools) {
      throw new GatewayError('invalid_request', `This request offers ${chat!.tools!.length} tools; at most ${l.max_tools} are allowed.`, { param: 'tools' });
    }
    if (l.max_output_tokens !== undefined && chat) {
      const asked = chat.max_completion_tokens ?? chat.max_tokens;
      if (asked !== undefined && asked !== null && asked > l.max_output_tokens && l.on_max_output_tokens === 'reject') {
        throw new GatewayError('invalid_request', `max_tokens ${asked} is over the limit of ${l.max_output_tokens}.`, { param: 'max_tokens' });
      }
      if (asked === undefined || asked === null || asked > l.max_output_tokens) {
        if (chat.max_completion_tokens != null) chat.max_completion_tokens = l.max_output_tokens;
        else chat.max_tokens = l.max_output_tokens;
      }
    }
    if (l.max_tool_calls !== undefined) ctx.maxToolCalls = Math.min(ctx.maxToolCalls ?? Infinity, l.max_tool_calls);
    if (l.max_runtime_ms !== undefined) {
      const ms = l.max_runtime_ms;
      const timer = setTimeout(() => ctx.abort(new GatewayError('request_timeout', `The request ran longer than its limit of ${ms} ms.`, { status: 504 })), ms);
      timer.unref();
      ctx.cleanups.push(() => clearTimeout(timer));
    }
    if (l.max_concurrent !== undefined) {
      const conc = ctx.services.budget.concurrency;
      const id = ctx.key!.id;
      const current = conc.get(id) ?? 0;
      if (current >= l.max_concurrent) {
        throw new GatewayError('rate_limited', `Your key already has ${current} requests in flight; at most ${l.max_concurrent} are allowed. Retry when one finishes.`, { retryAfter: 1 });
      }
      conc.set(id, current + 1);
      ctx.cleanups.push(() => conc.set(id, (conc.get(id) ?? 1) - 1));
    }
  }
}

/** Pipeline stage after dispatch: streams extend their reservation as tokens flow; tool-call caps apply. */
export function meterReply(ctx: RequestContext): void {
  const reply = ctx.reply;
  if (!reply) return;
  if (reply.kind === 'json') meterJsonReply(ctx, reply);
  else reply.chunks = meterStreamReply(ctx, reply.chunks);
}

/** Reply stage, JSON part: prices the answer and applies the run limit on tool calls. */
export function meterJsonReply(ctx: RequestContext, reply: Extract<Reply, { kind: 'json' }>): void {
  priceRequest(ctx);
  if (ctx.cost) ctx.responseHeaders['x-gateway-cost-usd'] = formatUsd(ctx.cost.nano);
  if (ctx.maxToolCalls !== undefined && ctx.endpoint === 'chat') capToolCalls(ctx, reply.body as { choices?: Array<{ message?: { tool_calls?: unknown[] } }> });
}

/** Reply stage, stream part: extends the reservation as the answer flows. */
export function meterStreamReply(ctx: RequestContext, chunks: AsyncIterable<ChatChunk>): AsyncIterable<ChatChunk> {
  // Only budgets grow with a stream: a rate limit's token reservation is its worst case from the start.
  return ctx.budget && ctx.budget.budgetChecks.length > 0 ? meterStream(ctx, chunks) : chunks;
}

function capToolCalls(ctx: RequestContext, body: { choices?: Array<{ message?: { tool_calls?: unknown[] } }> }): void {
  const max = ctx.maxToolCalls!;
  for (const choice of body.choices ?? []) {
    const calls = choice.message?.tool_calls;
    if (calls && calls.length > max) {
      ctx.events.push({ stage: 'run_limits', dropped_tool_calls: calls.length - max });
      choice.message!.tool_calls = calls.slice(0, max);
    }
  }
}

async function* meterStream(ctx: RequestContext, chunks: AsyncIterable<ChatChunk>): AsyncGenerator<ChatChunk> {
  const hold = ctx.budget!;
  const limits = ctx.config.limits;
  const cap = (ctx.chat?.max_completion_tokens ?? ctx.chat?.max_tokens ?? hold.price.maxOutputTokens) * (ctx.chat?.n ?? 1);
  let bytes = 0;
  for await (const chunk of chunks) {
    for (const choice of chunk.choices) {
      const d = choice.delta;
      if (d?.content) bytes += Buffer.byteLength(d.content);
      if (d?.tool_calls) for (const t of d.tool_calls) bytes += Buffer.byteLength(t.function?.arguments ?? '') + (t.function?.name?.length ?? 0);
    }
    // A token is at least one byte, so bytes bound the tokens so far: the reservation never falls behind.
    const bound = Math.min(bytes, cap);
    while (bound > hold.reservedOutput && hold.reservedOutput < cap) {
      const step = Math.min(limits.streamSliceTokens, cap - hold.reservedOutput);
      const extra: Amount = { usd: costNano(hold.price, { prompt_tokens: 0, completion_tokens: step }), tokens: step, requests: 0 };
      const checks = hold.budgetChecks.map((c) => ({ ...c, amount: extra }));
      const result = await hold.store.reserve(hold.reservation, checks, Date.now() + limits.reservationTtlMs, Date.now()).catch(() => ({ ok: false as const, reset: true as const }));
      if (!result.ok) {
        ctx.services.metrics.limitRefusals.labels('budget', result.reset ? 'store' : (hold.names[result.index] ?? 'budget')).inc();
        throw new GatewayError('budget_exceeded', `The stream was stopped: budget ${result.reset ? '' : `"${hold.names[result.index]}" `}has no room for more output.`);
      }
      hold.reservedOutput += step;
    }
    yield chunk;
  }
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

/** What the request cost, from the usage the provider reported. */
export function priceRequest(ctx: RequestContext): void {
  if (!ctx.usage || !ctx.deployment) return;
  const price = ctx.config.limits.prices.priceOf(ctx.deployment);
  const nano = costNano(price, ctx.usage);
  ctx.cost = { nano, usd: nano / 1e9, priced: price.known };
}

export type { BudgetConfig, RateLimitConfig };
