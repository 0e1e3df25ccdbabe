// A circuit breaker per deployment, so an outage costs one timeout, not one
// per request. Closed: calls pass and outcomes are counted. Open: calls are
// refused until the cool-down ends. Half-open: one probe passes; its success
// closes the breaker, its failure opens it again.
import type { BreakerConfig } from '../config/schema.js';
import type { GatewayError } from '../errors.js';

export type BreakerState = 'closed' | 'open' | 'half_open';

const BUCKETS = 10;

/**
 * Whether a failed attempt says the deployment is unhealthy: it could not be
 * reached, did not answer in time, failed with a 5xx, or sent an answer that
 * is broken (not JSON, the wrong shape, past the response limits: whatever
 * sits in front of the model is misbehaving, and it would again). A 429 is
 * not (the provider is up and rationing: see the cool-down in health.ts), nor
 * are the other 4xx (a bad key or a missing model is configuration, and
 * failing over costs one quick round trip).
 */
export function countsAgainstBreaker(error: GatewayError): boolean {
  const up = error.upstream;
  if (!up?.fallbackable) return false;
  switch (up.errorClass) {
    case 'connect':
    case 'timeout':
    case 'protocol':
      return true;
    case 'status':
      return up.status !== undefined && (up.status >= 500 || up.status === 408);
    default:
      return false;
  }
}

export class CircuitBreaker {
  state: BreakerState = 'closed';
  openUntil = 0;
  private consecutiveFailures = 0;
  private probing = false;
  // A ring of buckets over the window: [successes, failures] each.
  private readonly ok = new Array<number>(BUCKETS).fill(0);
  private readonly failed = new Array<number>(BUCKETS).fill(0);
  private bucketStart = 0;
  private bucket = 0;

  constructor(
    private config: BreakerConfig,
    private readonly onChange: (state: BreakerState, openUntil: number) => void = () => {},
  ) {}

  reconfigure(config: BreakerConfig): void {
    this.config = config;
  }

  /** Whether a call may go ahead now. A true in half-open state claims the one probe. */
  allow(now: number): boolean {
    if (!this.config.enabled || this.state === 'closed') return true;
    if (this.state === 'open') {
      if (now < this.openUntil) return false;
      this.transition('half_open', 0);
    }
    if (this.probing) return false;
    this.probing = true;
    return true;
  }

  /** Seconds until a probe may go through, for `retry-after`. */
  retryAfterSeconds(now: number): number {
    return Math.max(1, Math.ceil((this.openUntil - now) / 1000));
  }

  onSuccess(now: number): void {
    this.rotate(now);
    this.ok[this.bucket]!++;
    this.consecutiveFailures = 0;
    if (this.state !== 'closed') {
      this.probing = false;
      this.reset();
      this.transition('closed', 0);
    }
  }

  onFailure(now: number): void {
    this.rotate(now);
    this.failed[this.bucket]!++;
    this.consecutiveFailures++;
    if (!this.config.enabled) return;
    if (this.state === 'half_open') {
      this.probing = false;
      this.open(now);
      return;
    }
    if (this.state === 'closed' && (this.consecutiveFailures >= this.config.consecutive_failures || this.rateTripped())) this.open(now);
  }

  /** A call that ended without an outcome (client gone): free the probe. */
  onAbandon(): void {
    this.probing = false;
  }

  /** Applies an open state learnt from another replica. */
  forceOpen(until: number): void {
    if (until <= this.openUntil && this.state === 'open') return;
    this.probing = false;
    this.state = 'open';
    this.openUntil = until;
  }

  forceClose(): void {
    this.probing = false;
    this.consecutiveFailures = 0;
    this.reset();
    this.state = 'closed';
    this.openUntil = 0;
  }

  private open(now: number): void {
    this.transition('open', now + this.config.cooldown_ms);
  }

  private transition(state: BreakerState, openUntil: number): void {
    this.state = state;
    this.openUntil = openUntil;
    this.onChange(state, openUntil);
  }

  private rateTripped(): boolean {
    let ok = 0;
    let failed = 0;
    for (let i = 0; i < BUCKETS; i++) {
      ok += this.ok[i]!;
      failed += this.failed[i]!;
    }
    const total = ok + failed;
    return total >= this.config.min_requests && failed / total >= this.config.error_rate;
  }

  private rotate(now: number): void {
    const width = this.config.window_ms / BUCKETS;
    if (this.bucketStart === 0) this.bucketStart = now;
    let steps = Math.floor((now - this.bucketStart) / width);
    if (steps <= 0) return;
    this.bucketStart += steps * width;
    if (steps > BUCKETS) steps = BUCKETS;
    for (let i = 0; i < steps; i++) {
      this.bucket = (this.bucket + 1) % BUCKETS;
      this.ok[this.bucket] = 0;
      this.failed[this.bucket] = 0;
    }
  }

  private reset(): void {
    this.ok.fill(0);
    this.failed.fill(0);
  }
}
