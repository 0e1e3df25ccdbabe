// What the health page and GET /admin/health show: deployments with their
// breaker and 429 cool-down, SLOs with their error budget, admission gates
// (in flight, queued, shed) and the last config reload. All of it is read
// from state the gateway already keeps; nothing here is on the request path.
import type { GatewayState } from '../server/state.js';
import type { SloReport } from '../routing/slo.js';

export interface DeploymentView {
  id: string;
  in_flight: number;
  ewma_ms: number;
  breaker: string;
  breaker_open_for_ms: number;
  cooling_for_ms: number;
}

export interface GateView {
  gate: string;
  in_flight: number;
  queued: number;
  limit: number;
  shed: Record<string, number>;
}

export interface HealthView {
  object: 'health';
  deployments: DeploymentView[];
  slo: SloReport[];
  admission: GateView[];
  config: { file: string; loaded_at: string; last_reload: GatewayState['lastReload'] | null };
}

export function deploymentsView(state: GatewayState, now = Date.now()): DeploymentView[] {
  return [...state.services.health.entries()].map(([id, h]) => ({
    id,
    in_flight: h.inflight,
    ewma_ms: Math.round(h.ewmaMs * 1000) / 1000,
    breaker: h.breaker.state,
    breaker_open_for_ms: h.breaker.state === 'open' ? Math.max(0, h.breaker.openUntil - now) : 0,
    cooling_for_ms: h.coolingFor(now),
  }));
}

/** The admission gates as the metrics registry reads them at scrape time. */
async function gatesView(state: GatewayState): Promise<GateView[]> {
  const gates = new Map<string, GateView>();
  const gate = (id: string) => {
    let g = gates.get(id);
    if (!g) gates.set(id, (g = { gate: id, in_flight: 0, queued: 0, limit: 0, shed: {} }));
    return g;
  };
  const read = async (name: string) => (await state.metrics.registry.getSingleMetric(name)?.get())?.values ?? [];
  for (const v of await read('lanegate_admission_in_flight')) gate(String(v.labels.gate)).in_flight = v.value;
  for (const v of await read('lanegate_admission_queued')) gate(String(v.labels.gate)).queued = v.value;
  for (const v of await read('lanegate_admission_limit')) gate(String(v.labels.gate)).limit = v.value;
  for (const v of await read('lanegate_admission_shed_total')) {
    const g = gate(String(v.labels.gate));
    const reason = String(v.labels.reason);
    g.shed[reason] = (g.shed[reason] ?? 0) + v.value;
  }
  return [...gates.values()].sort((a, b) => (a.gate === 'global' ? -1 : b.gate === 'global' ? 1 : a.gate.localeCompare(b.gate)));
}

export async function healthView(state: GatewayState): Promise<HealthView> {
  const config = state.config();
  return {
    object: 'health',
    deployments: deploymentsView(state),
    slo: state.slo.report(),
    admission: await gatesView(state),
    config: { file: config.file, loaded_at: config.loadedAt.toISOString(), last_reload: state.lastReload ?? null },
  };
}
