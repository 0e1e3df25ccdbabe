// Retries with exponential backoff and full jitter, bounded by a retry budget
// so that during an outage retries cannot multiply the load on a provider.
import type { RetryConfig } from '../config/schema.js';
import type { GatewayError } from '../errors.js';

/** Full jitter: a uniform delay between 0 and the capped exponential step. */
export function backoffDelay(retry: number, config: RetryConfig, random: () => number = Math.random): number {
  const cap = Math.min(config.max_delay_ms, config.base_delay_ms * 2 ** retry);
  return Math.floor(random() * cap);
}

/**
 * A token bucket: every first attempt deposits `budget_ratio` of a token,
 * time adds `budget_min_per_second`, and every retry spends a whole one. So
 * retries stay near `budget_ratio` of traffic however many requests fail.
 */
export class RetryBudget {
  private tokens: number;
  private last: number;

  constructor(
    private config: RetryConfig,
    now: number,
  ) {
    this.tokens = this.capacity();
    this.last = now;
  }

  reconfigure(config: RetryConfig): void {
    this.config = config;
  }

  onRequest(now: number): void {
    this.refill(now);
    this.tokens = Math.min(this.capacity(), this.tokens + this.config.budget_ratio);
  }

  tryRetry(now: number): boolean {
    this.refill(now);
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  private capacity(): number {
    return Math.max(1, this.config.budget_min_per_second * 10);
  }

  private refill(now: number): void {
    const elapsed = (now - this.last) / 1000;
    this.last = now;
    if (elapsed > 0) this.tokens = Math.min(this.capacity(), this.tokens + elapsed * this.config.budget_min_per_second);
  }
}

/**
 * Errors worth another try on the same deployment: not a bad key or a missing
 * model, and not a 429 (the deployment rests instead; see health.ts).
 */
export function isRetryable(error: GatewayError): boolean {
  const up = error.upstream;
  if (!up?.fallbackable) return false;
  if (up.errorClass === 'breaker_open' || up.errorClass === 'cooling_down' || up.errorClass === 'aborted') return false;
  return up.status === undefined || up.status === 408 || up.status >= 500;
}
