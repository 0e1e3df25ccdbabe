// What the gateway knows about each deployment's health: requests in flight,
// a peak-EWMA of time to first token, its circuit breaker, its retry budget
// and its rate-limit cool-down. It lives outside the compiled config so a
// reload keeps it.
//
// The breaker and the cool-down answer different questions. The breaker asks
// "is this deployment broken?" and counts connection errors, timeouts, 5xx and
// broken answers. The cool-down asks "has the provider told us to wait?": a
// 429 is one client's quota running out, proof that the deployment is up, so
// it rests the deployment for the provider's retry-after and nothing more.
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
  /** Epoch ms until which the provider asked for no more requests (a 429); 0 when it did not. */
  coolingUntil = 0;

  constructor(
    deployment: Deployment,
    onBreakerChange: (state: BreakerState, openUntil: number) => void,
    private readonly onCoolDown: (until: number, o: { remote: boolean }) => void = () => {},
  ) {
    this.breaker = new CircuitBreaker(deployment.breaker, onBreakerChange);
    this.retryBudget = new RetryBudget(deployment.retry, Date.now());
  }

  /** Rests the deployment until `until` (epoch ms); a later rest already set wins. */
  coolDown(until: number, o: { remote: boolean } = { remote: false }): void {
    if (until <= this.coolingUntil) return;
    this.coolingUntil = until;
    this.onCoolDown(until, o);
  }

  /** Milliseconds of rest left; 0 when the deployment may be called. */
  coolingFor(now: number): number {
    return Math.max(0, this.coolingUntil - now);
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

  /**
   * Expected cost of sending one more request: latency scaled by queueing.
   * The latency decays with the time since it was last observed, as Finagle's
   * peak EWMA reads it: a deployment avoided after one slow answer gets no
   * new observations, so without the decay it stayed avoided for as long as
   * the others answered faster than that one answer (for good, with two).
   */
  cost(now = Date.now()): number {
    const w = this.lastObserved === 0 ? 1 : Math.exp(-Math.max(0, now - this.lastObserved) / DECAY_MS);
    return (this.ewmaMs * w || 1) * (this.inflight + 1);
  }
}

export interface HealthEvents {
  onBreakerChange?(id: string, state: BreakerState, openUntil: number): void;
  /** A deployment started or lengthened a rest after a 429, seen here or (`remote`) by another replica. */
  onCoolDown?(id: string, until: number, o: { remote: boolean }): void;
}

export interface HealthRegistry {
  get(deployment: Deployment): DeploymentHealth;
  /** Applies breaker state learnt from another replica (now or when the deployment is first seen). */
  applyRemote(id: string, state: BreakerState, openUntil: number): void;
  /** Applies a 429 cool-down learnt from another replica (now or when the deployment is first seen). */
  applyRemoteCoolDown(id: string, until: number): void;
  /** Every deployment seen so far, for /admin and metrics. */
  entries(): IterableIterator<[string, DeploymentHealth]>;
}

export function createHealthRegistry(events: HealthEvents = {}): HealthRegistry {
  const byId = new Map<string, { health: DeploymentHealth; deployment: Deployment }>();
  const pendingOpen = new Map<string, number>();
  const pendingCoolDown = new Map<string, number>();
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
    applyRemoteCoolDown(id, until) {
      const entry = byId.get(id);
      if (entry) entry.health.coolDown(until, { remote: true });
      else if (until > Date.now()) pendingCoolDown.set(id, Math.max(until, pendingCoolDown.get(id) ?? 0));
    },
    get(deployment) {
      let entry = byId.get(deployment.id);
      if (!entry) {
        const id = deployment.id;
        entry = {
          health: new DeploymentHealth(
            deployment,
            (state, until) => events.onBreakerChange?.(id, state, until),
            (until, o) => events.onCoolDown?.(id, until, o),
          ),
          deployment,
        };
        byId.set(id, entry);
        const until = pendingOpen.get(id);
        if (until !== undefined && until > Date.now()) entry.health.breaker.forceOpen(until);
        pendingOpen.delete(id);
        const rest = pendingCoolDown.get(id);
        if (rest !== undefined && rest > Date.now()) entry.health.coolDown(rest, { remote: true });
        pendingCoolDown.delete(id);
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
