// Service-level objectives per route ("triage completes within 2 minutes 95%
// of the time"). Good and total counts go to Prometheus for burn-rate alerts;
// a rolling hour is kept in memory for GET /admin/slo.
import type { SloConfig } from '../config/schema.js';
import type { Metrics } from '../telemetry/metrics.js';

const MINUTE = 60_000;
const WINDOW_MINUTES = 60;

interface RouteSlo {
  config: SloConfig;
  good: number[];
  total: number[];
  minute: number;
  sinceStart: { good: number; total: number };
}

export interface SloReport {
  route: string;
  latency_ms: number;
  target: number;
  window: string;
  good: number;
  total: number;
  ratio: number | null;
  meeting_objective: boolean | null;
  /** Share of the window's error budget left (1 = untouched, < 0 = overspent). */
  error_budget_remaining: number | null;
  since_start: { good: number; total: number; ratio: number | null };
}

export interface SloTracker {
  record(route: string, config: SloConfig, ok: boolean, latencyMs: number, now?: number): void;
  report(now?: number): SloReport[];
}

export function createSloTracker(metrics: Metrics): SloTracker {
  const routes = new Map<string, RouteSlo>();

  function slot(r: RouteSlo, now: number): number {
    const minute = Math.floor(now / MINUTE);
    const steps = Math.min(WINDOW_MINUTES, minute - r.minute);
    for (let i = 1; i <= steps; i++) {
      const idx = (r.minute + i) % WINDOW_MINUTES;
      r.good[idx] = 0;
      r.total[idx] = 0;
    }
    if (steps > 0) r.minute = minute;
    return minute % WINDOW_MINUTES;
  }

  return {
    record(route, config, ok, latencyMs, now = Date.now()) {
      let r = routes.get(route);
      if (!r) {
        r = { config, good: new Array(WINDOW_MINUTES).fill(0), total: new Array(WINDOW_MINUTES).fill(0), minute: Math.floor(now / MINUTE), sinceStart: { good: 0, total: 0 } };
        routes.set(route, r);
      }
      r.config = config;
      const good = ok && latencyMs <= config.latency_ms;
      const i = slot(r, now);
      r.total[i]!++;
      r.sinceStart.total++;
      if (good) {
        r.good[i]!++;
        r.sinceStart.good++;
      }
      metrics.sloRequests.labels(route, good ? 'good' : 'bad').inc();
      metrics.sloObjective.labels(route).set(config.target);
      metrics.routeDuration.labels(route).observe(latencyMs / 1000);
    },
    report(now = Date.now()) {
      const out: SloReport[] = [];
      for (const [route, r] of routes) {
        slot(r, now);
        const good = r.good.reduce((a, b) => a + b, 0);
        const total = r.total.reduce((a, b) => a + b, 0);
        const ratio = total > 0 ? good / total : null;
        const allowedBad = (1 - r.config.target) * total;
        out.push({
          route,
          latency_ms: r.config.latency_ms,
          target: r.config.target,
          window: '1h',
          good,
          total,
          ratio,
          meeting_objective: ratio === null ? null : ratio >= r.config.target,
          error_budget_remaining: total > 0 ? 1 - (total - good) / allowedBad : null,
          since_start: { ...r.sinceStart, ratio: r.sinceStart.total > 0 ? r.sinceStart.good / r.sinceStart.total : null },
        });
      }
      return out;
    },
  };
}
