// Saturation as the SRE dashboard sees it, per gate (`global` or a deployment
// id): slots in use, requests waiting, the limit they are measured against,
// how long admitted requests waited, and who was shed and why.
import { Gauge, type Registry } from 'prom-client';
import { FastCounter, FastHistogram } from '../telemetry/fast-metrics.js';
import type { AdmissionGate } from './gate.js';

export interface AdmissionMetrics {
  wait: FastHistogram<'gate'>;
  shed: FastCounter<'gate' | 'reason'>;
}

const WAIT_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export function createAdmissionMetrics(registry: Registry, gates: () => Iterable<[string, AdmissionGate]>): AdmissionMetrics {
  const registers = [registry];
  // Read from the gates at scrape time: nothing to update on the request path.
  const gauge = (name: string, help: string, read: (gate: AdmissionGate) => number) =>
    new Gauge({
      name,
      help,
      labelNames: ['gate'],
      registers,
      collect() {
        this.reset();
        for (const [id, gate] of gates()) this.labels(id).set(read(gate));
      },
    });
  gauge('lanegate_admission_in_flight', 'Requests holding a slot of the gate (global, or per deployment), streams until they end.', (g) => g.inflight);
  gauge('lanegate_admission_queued', 'Requests waiting for a slot of the gate.', (g) => g.queued);
  gauge('lanegate_admission_limit', 'The gate\'s max_inflight (admission: config); in_flight / limit is its saturation.', (g) => g.limits.maxInflight);
  return {
    wait: new FastHistogram({
      name: 'lanegate_admission_wait_seconds',
      help: 'Time admitted requests waited for a slot of the gate (0 when one was free).',
      labelNames: ['gate'],
      buckets: WAIT_BUCKETS,
      registers,
    }),
    shed: new FastCounter({
      name: 'lanegate_admission_shed_total',
      help: 'Requests refused a slot (503 overloaded, or the next candidate tried), by gate and reason (queue_full, queue_timeout, expected_wait, displaced).',
      labelNames: ['gate', 'reason'],
      registers,
    }),
  };
}
