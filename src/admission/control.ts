// The gateway's admission gates: one global, one per deployment. They live
// outside the compiled config (like deployment health) so a reload keeps
// their counts; each admission applies the limits of the config its request
// started with, so new limits take effect for new admissions and requests in
// flight keep their slots.
import type { Registry } from 'prom-client';
import type { CompiledConfig } from '../config/compile.js';
import type { Deployment } from '../providers/types.js';
import type { AdmissionConfig } from './config.js';
import { AdmissionGate, type GateLimits } from './gate.js';
import { createAdmissionMetrics, type AdmissionMetrics } from './metrics.js';

export const GLOBAL_GATE = 'global';

/** Without a `connections` setting (the mock), a deployment gets this many slots unless configured. */
const DEFAULT_DEPLOYMENT_INFLIGHT = 128;

export interface AdmissionControl {
  gate(id: string, limits: GateLimits): AdmissionGate;
  /** True while a request waits at any gate: the queue worker then starts no new line (src/queue/worker.ts). */
  anyWaiting(): boolean;
  readonly metrics: AdmissionMetrics;
}

export function createAdmissionControl(registry: Registry): AdmissionControl {
  const gates = new Map<string, AdmissionGate>();
  return {
    gate(id, limits) {
      let gate = gates.get(id);
      if (!gate) gates.set(id, (gate = new AdmissionGate(limits)));
      else gate.configure(limits);
      return gate;
    },
    anyWaiting() {
      for (const gate of gates.values()) if (gate.queued > 0) return true;
      return false;
    },
    metrics: createAdmissionMetrics(registry, () => gates.entries()),
  };
}

const globalLimits = new WeakMap<AdmissionConfig, GateLimits>();
const deploymentLimits = new WeakMap<Deployment, GateLimits>();

export function globalLimitsOf(config: AdmissionConfig): GateLimits {
  let limits = globalLimits.get(config);
  if (!limits) globalLimits.set(config, (limits = { maxInflight: config.global.max_inflight, maxQueue: config.global.max_queue }));
  return limits;
}

const poolShares = new WeakMap<CompiledConfig, Map<string, number>>();

/**
 * A deployment without its own max_inflight gets an equal share of its
 * provider's pool, after the deployments that set one: the deployments of a
 * provider share one undici pool, and slots that added up to more than its
 * `connections` would let the excess wait in the pool's queue, unbounded in
 * time and outside the gateway's own.
 */
function poolShare(config: CompiledConfig, deployment: Deployment): number {
  let shares = poolShares.get(config);
  if (!shares) {
    shares = new Map();
    const admission = config.raw.admission;
    const byProvider = new Map<string, { connections: number; explicit: number; unset: number }>();
    const seen = new Set<string>();
    for (const model of config.models.values()) {
      for (const d of model.deployments) {
        if (seen.has(d.id) || d.provider.type === 'mock') continue;
        seen.add(d.id);
        const p = byProvider.get(d.providerName) ?? { connections: d.provider.connections, explicit: 0, unset: 0 };
        const own = admission.deployments[d.id]?.max_inflight ?? admission.deployment.max_inflight;
        if (own === undefined) p.unset++;
        else p.explicit += own;
        byProvider.set(d.providerName, p);
      }
    }
    for (const [name, p] of byProvider) shares.set(name, Math.max(1, Math.floor((p.connections - p.explicit) / Math.max(1, p.unset))));
    poolShares.set(config, shares);
  }
  return shares.get(deployment.providerName) ?? DEFAULT_DEPLOYMENT_INFLIGHT;
}

/** A reload compiles new Deployment objects, so this is worked out once per deployment per load. */
export function deploymentLimitsOf(config: CompiledConfig, deployment: Deployment): GateLimits {
  let limits = deploymentLimits.get(deployment);
  if (!limits) {
    const admission = config.raw.admission;
    const own = admission.deployments[deployment.id];
    const pool = deployment.provider.type === 'mock' ? DEFAULT_DEPLOYMENT_INFLIGHT : poolShare(config, deployment);
    limits = {
      maxInflight: own?.max_inflight ?? admission.deployment.max_inflight ?? pool,
      maxQueue: own?.max_queue ?? admission.deployment.max_queue,
    };
    deploymentLimits.set(deployment, limits);
  }
  return limits;
}
