// The budget store a gateway uses, and what it does after a data loss.
import path from 'node:path';
import type { CompiledConfig } from '../config/compile.js';
import type { RedisStore } from '../stores/redis.js';
import type { Logger } from '../telemetry/logger.js';
import type { Metrics } from '../telemetry/metrics.js';
import { createEpochGuard, ledgerSinceKey, newMarker } from './epoch.js';
import { describeSource, ledgerSource, rebuildCounters } from './ledger.js';
import { createRedisBudgetStore } from './redis-store.js';
import type { BudgetServices } from './types.js';
import { createStoreErrorLog } from './store-errors.js';
import { createMemoryBudgetStore, type BudgetStore } from './store.js';

export interface BudgetServicesOptions {
  redis: RedisStore | undefined;
  config: () => CompiledConfig;
  logger: Logger;
  metrics?: Pick<Metrics, 'budgetCountersLost'>;
}

/** The file in which a replica remembers its budget epoch: beside its audit trail, on its own volume. */
export function epochFile(auditDir: string): string {
  return path.join(auditDir, 'budget-epoch.json');
}

export function createBudgetServices(o: BudgetServicesOptions): BudgetServices {
  const { redis, config, logger } = o;
  const store = redis ? createRedisBudgetStore(redis) : createMemoryBudgetStore();
  const fallback = createMemoryBudgetStore();
  // Local accounting starts from zero: it only exists while the shared store is unreachable.
  void fallback.seed([]);
  const guard = redis ? createEpochGuard({ redis, logger, metrics: o.metrics, stateFile: epochFile(config().audit.dir) }) : undefined;
  const storeErrors = createStoreErrorLog({ logger, redis });

  // In memory (one gateway) the ledger is this gateway's own: the whole spend.
  async function rebuildAlone(target: BudgetStore): Promise<void> {
    const c = config();
    const result = await rebuildCounters(target, c.limits, [ledgerSource(c.audit, redis)]);
    // Alone, the counters live in memory: every start rebuilds them, so this is news, not a warning.
    logger.info({ counters: result.counters, sources: result.sources }, 'budget counters rebuilt from the usage ledger');
  }

  // On a shared Redis only a new deployment starts by itself, from the first
  // gateway's ledger; a loss waits for an operator's rebuild over every replica's.
  async function startShared(target: BudgetStore, shared: RedisStore): Promise<void> {
    const state = await guard!.check();
    if (state === 'ok') return;
    if (state === 'lost') throw guard!.refusal();
    const lockKey = shared.key('budget', 'rebuild-lock');
    const got = await shared.client.set(lockKey, '1', 'PX', 30_000, 'NX');
    if (got !== 'OK') {
      // Another gateway is setting the counters up: wait (bounded) for its marker, then join its epoch.
      const deadline = Date.now() + 3_000;
      while (Date.now() < deadline && !(await target.seeded().catch(() => false))) await new Promise((r) => setTimeout(r, 50));
      await guard!.check();
      return;
    }
    try {
      const c = config();
      const source = ledgerSource(c.audit, shared);
      const marker = newMarker('start', { sources: [describeSource(source)] });
      const result = await rebuildCounters(target, c.limits, [source], { seed: { marker: JSON.stringify(marker) } });
      await guard!.adopt(marker);
      // A new deployment's streams hold every record it will ever write.
      if (c.audit.sink === 'redis') await shared.client.set(ledgerSinceKey(shared), '0', 'NX');
      // A new deployment with an empty ledger is the normal first start; spend found for a
      // store that is new to it (a replaced Redis) is worth an operator's look.
      const found = result.sources.some((src) => src.records > 0);
      logger[found ? 'warn' : 'info']({ epoch: marker.epoch, counters: result.counters, sources: result.sources }, 'budget counters set up from this gateway\'s usage ledger (the budget store was new: no epoch was known)');
    } finally {
      await shared.client.del(lockKey).catch(() => {});
    }
  }

  // One rebuild at a time per process.
  let running: Promise<void> | undefined;
  return {
    store,
    fallback,
    concurrency: new Map(),
    rebuild(target: BudgetStore) {
      running ??= (redis && target === store ? startShared(target, redis) : rebuildAlone(target)).finally(() => {
        running = undefined;
      });
      return running;
    },
    reportStoreError: (err, mode) => storeErrors.report(err, mode),
    close: () => guard?.close(),
  };
}
