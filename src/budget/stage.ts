// Pipeline stages for what a request may cost, each a thin entry point to
// the module that does the job: run limits (run-limits.ts), then the
// reservation of rate limits and budgets (reservation.ts, refusals in
// refusal.ts) before the upstream call; pricing (pricing.ts) and stream
// metering (stream-meter.ts) on the reply; settlement (reservation.ts)
// once the request is over.
import type { RequestContext } from '../pipeline/context.js';
import { formatUsd, priceRequest } from './pricing.js';
import { reserveLimits, settleBudget } from './reservation.js';
import { applyRunLimits, capToolCalls } from './run-limits.js';
import { meterStream } from './stream-meter.js';
import type { BudgetConfig, RateLimitConfig } from './schema.js';

/**
 * Pipeline stage: run limits, rate limits and budget reservation, before the
 * upstream call. Synchronous when there are no limits, so the runner awaits
 * nothing; otherwise the reservation's own promise, not a wrapper around it.
 */
export function enforceLimits(ctx: RequestContext): void | Promise<void> {
  if (ctx.config.limits.empty) return;
  applyRunLimits(ctx);
  return reserveLimits(ctx);
}

/** Pipeline stage after dispatch: streams extend their reservation as tokens flow; tool-call caps apply. */
export function meterReply(ctx: RequestContext): void {
  const reply = ctx.reply;
  if (!reply) return;
  if (reply.kind === 'json') {
    priceRequest(ctx);
    if (ctx.cost) ctx.responseHeaders['x-gateway-cost-usd'] = formatUsd(ctx.cost.nano);
  }
  if (reply.kind === 'json' && ctx.maxToolCalls !== undefined && ctx.endpoint === 'chat') capToolCalls(ctx, reply.body as { choices?: Array<{ message?: { tool_calls?: unknown[] } }> });
  // Only budgets grow with a stream: a rate limit's token reservation is its worst case from the start.
  if (reply.kind === 'stream' && ctx.budget && ctx.budget.budgetChecks.length > 0) reply.chunks = meterStream(ctx, reply.chunks);
}

export { priceRequest, settleBudget };
export type { BudgetConfig, RateLimitConfig };
export type { BudgetHold, BudgetServices } from './types.js';
