// The work queue's long-lived part (Services.queue): the store (a journal
// file for the single instance, Redis Streams for replicas), the worker that
// drains it with spare capacity, and the handlers of each kind of work.
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import type { Registry } from 'prom-client';
import type { AuditSink } from '../audit/transport/writer.js';
import { createBatchHandler } from '../batches/lines.js';
import type { CompiledConfig } from '../config/compile.js';
import type { Services } from '../pipeline/context.js';
import type { RedisStore } from '../stores/redis.js';
import { createBackgroundHandler } from './background.js';
import { queueDir } from './config.js';
import { openLocalWorkStore } from './local-store.js';
import { createQueueMetrics } from './metrics.js';
import { openRedisWorkStore } from './redis-store.js';
import type { QueueService, WorkStore } from './types.js';
import { QueueWorker } from './worker.js';

export interface QueueServiceOptions {
  config: () => CompiledConfig;
  redis: RedisStore | undefined;
  registry: Registry;
  audit: AuditSink;
  services: () => Services;
}

export function createQueueService(o: QueueServiceOptions): QueueService {
  let opened: WorkStore | undefined;
  let opening: Promise<WorkStore> | undefined;
  let worker: QueueWorker | undefined;
  const listeners: Array<() => void> = [];
  const open = (): Promise<WorkStore> =>
    (opening ??= (async () => {
      const settings = o.config().raw.queue;
      if (o.redis) return (opened = await openRedisWorkStore(o.redis, {
          claimIdleMs: settings.claim_idle_ms,
          onRenewError: (err) => o.services().logger.warn({ err: String(err) }, 'the claims on queued lines running here could not be renewed; retrying'),
        }));
      const local = await openLocalWorkStore(queueDir(settings, o.config().raw.audit.dir), { compactMinBytes: settings.compact_min_bytes });
      local.onEnqueue(() => listeners.forEach((l) => l()));
      return (opened = local);
    })());
  const metrics = createQueueMetrics(o.registry, {
    store: () => opened,
    running: () => worker?.running ?? 0,
    pace: () => (worker ? Math.min(worker.pace, worker.limit) : 0),
    concurrency: () => o.config().raw.queue.concurrency,
  });
  return {
    store: open,
    async start() {
      const store = await open();
      worker = new QueueWorker({
        store,
        config: o.config,
        services: o.services,
        audit: o.audit,
        consumer: `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`,
        handlers: { batch: createBatchHandler({ store: open, config: o.config, services: o.services }), response: createBackgroundHandler({ config: o.config, services: o.services }) },
        metrics,
        onEnqueue: (l) => listeners.push(l),
      });
      worker.start();
    },
    async stop(graceMs) {
      await worker?.stop(graceMs);
      await opened?.close();
    },
    abortRunning(owner, reason) {
      worker?.abortRunning(owner, reason);
    },
  };
}
