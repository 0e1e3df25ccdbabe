// Pipeline stages for what a request may cost, each a thin entry point to
// the module that does the job: run limits (run-limits.ts), then the
// reservation of rate limits and budgets (reservation.ts, refusals in
// refusal.ts) before the upstream call; pricing (pricing.ts) and stream
// metering (stream-meter.ts) on the reply; settlement (reservation.ts)
// once the request is over.
import type { ChatChunk } from '../api/schemas.js';
import type { Reply, RequestContext } from '../pipeline/context.js';
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

/** Reply stage, JSON part: prices the answer (the cost goes in a header, never into the body) and applies the run limit on tool calls. */
export function meterJsonReply(ctx: RequestContext, reply: Extract<Reply, { kind: 'json' }>): void {
  priceRequest(ctx);
  if (ctx.cost) ctx.responseHeaders['x-gateway-cost-usd'] = formatUsd(ctx.cost.nano);
  if (ctx.maxToolCalls !== undefined && ctx.chat && capToolCalls(ctx, reply.body as { choices?: Array<{ message?: { tool_calls?: unknown[] } }> })) reply.text = undefined;
}

/** Reply stage, stream part: extends the reservation as the answer flows. */
export function meterStreamReply(ctx: RequestContext, chunks: AsyncIterable<ChatChunk>): AsyncIterable<ChatChunk> {
  // Only budgets grow with a stream: a rate limit's token reservation is its worst case from the start.
  return ctx.budget && ctx.budget.budgetChecks.length > 0 ? meterStream(ctx, chunks) : chunks;
}

export { priceRequest, settleBudget };
export type { BudgetConfig, RateLimitConfig };
export type { BudgetHold, BudgetServices } from './types.js';
