// The queue as the SRE dashboard sees it. Per-batch series would grow without
// bound (one label value per batch), so lines are counted by kind and
// outcome; a batch's own counts are its request_counts (GET /v1/batches/{id},
// `lanegate batches show`).
import { Counter, Gauge, type Registry } from 'prom-client';
import type { WorkStore } from './types.js';

export interface QueueMetrics {
  lines: Counter<'kind' | 'outcome'>;
  retries: Counter<'code'>;
  backoffs: Counter<'code'>;
  duplicates: Counter;
}

export function createQueueMetrics(registry: Registry, read: { store: () => WorkStore | undefined; running: () => number; pace: () => number; concurrency: () => number }): QueueMetrics {
  const registers = [registry];
  // Read at scrape time from the store (shared by replicas with Redis) and this worker.
  new Gauge({
    name: 'lanegate_queue_depth',
    help: 'Work items (batch lines, background responses) queued or running, not yet answered.',
    registers,
    async collect() {
      const store = read.store();
      if (store) this.set((await store.stats().catch(() => ({ depth: 0 }))).depth);
    },
  });
  new Gauge({
    name: 'lanegate_queue_oldest_age_seconds',
    help: 'Age of the oldest work item not yet answered; 0 when the queue is empty.',
    registers,
    async collect() {
      const store = read.store();
      if (store) this.set((await store.stats().catch(() => ({ oldestAgeMs: 0 }))).oldestAgeMs / 1000);
    },
  });
  new Gauge({
    name: 'lanegate_queue_running',
    help: 'Queued lines this replica runs now; over lanegate_queue_pace it is the share of its spare-capacity pace in use.',
    registers,
    collect() {
      this.set(read.running());
    },
  });
  new Gauge({
    name: 'lanegate_queue_pace',
    help: 'Lines this replica lets run at once now: queue.concurrency, halved on upstream 429s and overload and grown back one line per success, and cut while the event loop runs late (the CPU is not spare).',
    registers,
    collect() {
      this.set(Math.min(read.pace(), read.concurrency()));
    },
  });
  return {
    lines: new Counter({ name: 'lanegate_queue_lines_total', help: 'Queued lines answered, by kind (batch, response) and outcome (ok, error, expired, cancelled).', labelNames: ['kind', 'outcome'], registers }),
    retries: new Counter({ name: 'lanegate_queue_retries_total', help: 'Tries of queued lines retried after a retryable error, by error code.', labelNames: ['code'], registers }),
    backoffs: new Counter({ name: 'lanegate_queue_backoffs_total', help: 'Times the worker halved its pace and paused (upstream 429s, rate limits, overload), by error code.', labelNames: ['code'], registers }),
    duplicates: new Counter({ name: 'lanegate_queue_duplicate_answers_total', help: 'Tries whose line already had its result (another replica answered it first); released, not charged.', registers }),
  };
}
