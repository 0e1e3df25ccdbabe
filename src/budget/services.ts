// The budget store a gateway uses, and how it rebuilds after a data loss.
import type { CompiledConfig } from '../config/compile.js';
import type { RedisStore } from '../stores/redis.js';
import type { Logger } from '../telemetry/logger.js';
import { ledgerSource, rebuildCounters } from './ledger.js';
import { createRedisBudgetStore } from './redis-store.js';
import type { BudgetServices } from './stage.js';
import { createMemoryBudgetStore, type BudgetStore } from './store.js';

export function createBudgetServices(redis: RedisStore | undefined, config: () => CompiledConfig, logger: Logger): BudgetServices {
  const store = redis ? createRedisBudgetStore(redis) : createMemoryBudgetStore();
  const fallback = createMemoryBudgetStore();
  // Local accounting starts from zero: it only exists while the shared store is unreachable.
  void fallback.seed([]);
  // One rebuild at a time per process; across replicas a lock in Redis.
  let running: Promise<void> | undefined;
  return {
    store,
    fallback,
    concurrency: new Map(),
    rebuild(target: BudgetStore) {
      running ??= (async () => {
        const lockKey = redis?.key('budget', 'rebuild-lock');
        if (redis && lockKey && target === store) {
          const got = await redis.client.set(lockKey, '1', 'PX', 30_000, 'NX');
          if (got !== 'OK') {
            // Another replica is rebuilding: wait (bounded) for its seed.
            const deadline = Date.now() + 3_000;
            while (Date.now() < deadline && !(await target.seeded().catch(() => false))) await new Promise((r) => setTimeout(r, 50));
            return;
          }
        }
        try {
          const c = config();
          // The ledger is read where the audit sink writes it: with `sink: redis`, every replica's records.
          const n = await rebuildCounters(target, c.limits, ledgerSource(c.audit, redis));
          logger.warn({ counters: n }, 'budget counters rebuilt from the usage ledger');
        } finally {
          if (redis && lockKey) await redis.client.del(lockKey).catch(() => {});
        }
      })().finally(() => {
        running = undefined;
      });
      return running;
    },
  };
}
