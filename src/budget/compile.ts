// Budgets, rate limits and run limits compiled once per config load into
// lookups the request path can use without allocating much.
import type { GatewayConfig } from '../config/schema.js';
import { createPriceBook, type PriceBook } from './pricing.js';
import type { BudgetConfig, RateLimitConfig, RunLimitConfig } from './schema.js';

export interface CompiledLimits {
  timezone: string;
  streamSliceTokens: number;
  reservationTtlMs: number;
  prices: PriceBook;
  budgets: BudgetConfig[];
  rateLimits: RateLimitConfig[];
  runLimits: RunLimitConfig[];
  /** Nothing to count: the limits stage costs nothing. */
  empty: boolean;
}

export function compileLimits(config: GatewayConfig): CompiledLimits {
  const b = config.budgets;
  return {
    timezone: b.timezone,
    streamSliceTokens: b.stream_slice_tokens,
    reservationTtlMs: b.reservation_ttl_ms,
    prices: createPriceBook(config.pricing),
    budgets: b.rules,
    rateLimits: config.rate_limits,
    runLimits: config.run_limits,
    empty: b.rules.length === 0 && config.rate_limits.length === 0 && config.run_limits.length === 0,
  };
}
