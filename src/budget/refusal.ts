// Refusals: a reservation that did not fit becomes the error the client
// gets, naming the limit, what it needs and when to retry.
import { GatewayError } from '../errors.js';
import type { RequestContext } from '../pipeline/context.js';
import { periodEnd } from './periods.js';
import { formatUsd } from './pricing.js';
import { formatWait, rollingAdmission, rollingRemaining } from './rolling-admission.js';
import type { CounterCheck, Dimension, ReserveResult } from './store.js';

/** The error for the check at `result.index`: the first `rateCount` checks are rate limits, the rest budgets. */
export function limitRefusal(ctx: RequestContext, checks: CounterCheck[], names: string[], result: Extract<ReserveResult, { ok: false; reset: false }>, rateCount: number, now: number): GatewayError {
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
