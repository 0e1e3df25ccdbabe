// What the gateway knows about each deployment's health: requests in flight,
// a peak-EWMA of time to first token, its circuit breaker and retry budget.
// It lives outside the compiled config so a reload keeps it.
import type { Deployment } from '../providers/types.js';
import { CircuitBreaker, type BreakerState } from './breaker.js';
import { RetryBudget } from './retry.js';

const DECAY_MS = 10_000;

export class DeploymentHealth {
  inflight = 0;
  /** Peak EWMA of time to first token, ms; 0 until the first observation. */
  ewmaMs = 0;
  private lastObserved = 0;
  readonly breaker: CircuitBreaker;
  readonly retryBudget: RetryBudget;

  constructor(deployment: Deployment, onBreakerChange: (state: BreakerState, openUntil: number) => void) {
    this.breaker = new CircuitBreaker(deployment.breaker, onBreakerChange);
    this.retryBudget = new RetryBudget(deployment.retry, Date.now());
  }

  /**
   * Peak EWMA (as in Finagle): a slower observation is taken at once, a faster
   * one only decays the average, so a deployment that slows down is avoided
   * quickly and trusted again gradually.
   */
  observe(latencyMs: number, now: number): void {
    if (this.ewmaMs === 0 || latencyMs > this.ewmaMs) {
      this.ewmaMs = latencyMs;
    } else {
      const w = Math.exp(-(now - this.lastObserved) / DECAY_MS);
      this.ewmaMs = this.ewmaMs * w + latencyMs * (1 - w);
    }
    this.lastObserved = now;
  }

  /** Expected cost of sending one more request: latency scaled by queueing. */
  cost(): number {
    return (this.ewmaMs || 1) * (this.inflight + 1);
  }
}

export interface HealthRegistry {
  get(deployment: Deployment): DeploymentHealth;
  /** Applies breaker state learnt from another replica (now or when the deployment is first seen). */
  applyRemote(id: string, state: BreakerState, openUntil: number): void;
  /** Every deployment seen so far, for /admin and metrics. */
  entries(): IterableIterator<[string, DeploymentHealth]>;
}

export function createHealthRegistry(onBreakerChange: (id: string, state: BreakerState, openUntil: number) => void = () => {}): HealthRegistry {
  const byId = new Map<string, { health: DeploymentHealth; deployment: Deployment }>();
  const pendingOpen = new Map<string, number>();
  const apply = (health: DeploymentHealth, state: BreakerState, openUntil: number) => {
    if (state === 'open') health.breaker.forceOpen(openUntil);
    else if (state === 'closed') health.breaker.forceClose();
  };
  return {
    applyRemote(id, state, openUntil) {
      const entry = byId.get(id);
      if (entry) apply(entry.health, state, openUntil);
      else if (state === 'open') pendingOpen.set(id, openUntil);
      else pendingOpen.delete(id);
    },
    get(deployment) {
      let entry = byId.get(deployment.id);
      if (!entry) {
        entry = { health: new DeploymentHealth(deployment, (state, until) => onBreakerChange(deployment.id, state, until)), deployment };
        byId.set(deployment.id, entry);
        const until = pendingOpen.get(deployment.id);
        if (until !== undefined && until > Date.now()) entry.health.breaker.forceOpen(until);
        pendingOpen.delete(deployment.id);
      } else if (entry.deployment !== deployment) {
        // a reload compiled a new Deployment object: pick up its settings
        entry.health.breaker.reconfigure(deployment.breaker);
        entry.health.retryBudget.reconfigure(deployment.retry);
        entry.deployment = deployment;
      }
      return entry.health;
    },
    *entries() {
      for (const [id, e] of byId) yield [id, e.health];
    },
  };
}
