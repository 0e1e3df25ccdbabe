// Creates, at 0, every counter series whose label values the config names
// (budgets, rate limits, lanes, models, deployments), at start and after each
// reload. Prometheus's increase() and rate() need a sample before an event to
// see it: a series born with its first increment shows nothing, so a
// dashboard said "0 budget refusals" after two. Series keyed by API key, team
// or app, or by values only requests bring (error codes, status classes), are
// left to appear on use: their cross products would be mostly empty series.
import { auditMetrics } from '../audit/metrics.js';
import type { CacheMetrics } from '../cache/metrics.js';
import type { CompiledConfig } from '../config/compile.js';
import { TOOL_BLOCK_RULES } from '../policy/tools.js';
import type { Metrics } from './metrics.js';

export interface SeriesTargets {
  metrics: Metrics;
  cache?: { metrics: CacheMetrics } | undefined;
}

/** Idempotent: a series that exists keeps its value. */
export function initialiseSeries(targets: SeriesTargets, config: CompiledConfig): void {
  const { metrics } = targets;
  const zero = (counter: { labels(...values: string[]): { inc(value?: number): void } }, ...values: string[]) => counter.labels(...values).inc(0);

  for (const result of ['ok', 'error']) zero(metrics.configReloads, result);

  const limits = config.limits;
  for (const b of limits.budgets) zero(metrics.limitRefusals, 'budget', b.name);
  for (const r of limits.rateLimits) zero(metrics.limitRefusals, 'rate_limit', r.name);
  if (limits.budgets.length > 0 || limits.rateLimits.length > 0) for (const mode of ['fail_closed', 'fail_open']) zero(metrics.budgetStoreErrors, mode);

  for (const model of config.models.values()) {
    for (const d of model.deployments) {
      zero(metrics.unpriced, d.id);
      zero(metrics.cooldowns, d.id);
      zero(metrics.upstreamRetries, d.providerName, d.id);
      zero(metrics.upstreamAttempts, d.providerName, 'ok');
    }
    if (model.degrade) zero(metrics.degraded, model.name);
    // Any candidate after the first is a fallback: the model's other deployments, then its fallback models'.
    const candidates = [...model.deployments, ...model.fallbacks.flatMap((name) => config.models.get(name)?.deployments ?? [])];
    if (candidates.length > 1) for (const provider of new Set(candidates.slice(1).map((d) => d.providerName))) zero(metrics.fallbacks, model.name, provider);
    if (model.slo) zeroSlo(metrics, model.name, model.slo.target);
  }
  for (const route of config.routes.values()) if (route.slo) zeroSlo(metrics, route.name, route.slo.target);

  const lanes = [...config.policies.lanes.values()];
  const audit = auditMetrics(metrics.registry);
  for (const lane of lanes) {
    for (const d of lane.detectors) zero(metrics.policyActions, lane.name, d.detector.name, d.action);
    zero(metrics.toolCalls, lane.name, 'passed', 'allowed');
    zero(metrics.toolCalls, lane.name, 'held', 'require_approval');
    for (const rule of TOOL_BLOCK_RULES) zero(metrics.toolCalls, lane.name, 'blocked', rule);
  }
  for (const chain of [...lanes.map((l) => l.name), '_gateway']) for (const reason of ['retention', 'manual']) zero(audit.purged, chain, reason);

  // The finance dashboard's cache savings: per route (or model asked for) and lane.
  const cache = config.raw.cache.enabled ? targets.cache?.metrics : undefined;
  if (cache) {
    for (const route of [...config.routes.keys(), ...config.models.keys()]) {
      for (const lane of lanes) {
        zero(cache.savedUsd, route, lane.name);
        for (const direction of ['input', 'output']) zero(cache.savedTokens, route, lane.name, direction);
      }
    }
  }
}

function zeroSlo(metrics: Metrics, route: string, target: number): void {
  for (const result of ['good', 'bad']) metrics.sloRequests.labels(route, result).inc(0);
  metrics.sloObjective.labels(route).set(target);
}
