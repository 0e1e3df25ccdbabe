// The cache as the gateway's long-lived service: its store, metrics, single
// flight and the bounded queue of writes that happen after the client has
// its answer.
import type { Registry } from 'prom-client';
import type { RedisStore } from '../stores/redis.js';
import type { Logger } from '../telemetry/logger.js';
import { createCacheMetrics, type CacheMetrics } from './metrics.js';
import type { CacheConfig } from './schema.js';
import { SingleFlight } from './single-flight.js';
import { createCacheStore, type CacheStore, type EntryKey, type PurgeFilter, type StoreOperation } from './store.js';

/** What the cache did for one request: on the context for the audit record and metrics. */
export interface CacheOutcome {
  status: 'hit' | 'miss' | 'bypass';
  /** Why it bypassed, refreshed or waited (e.g. lane_off, nondeterministic, no_store, store_unavailable, single_flight). */
  reason?: string;
  /** The lane's scope kind; never the team or key itself. */
  scope?: 'shared' | 'team' | 'key';
  /** The first 12 hex digits of the entry's hash: enough to find it again, nothing about the request. */
  key?: string;
  /** Seconds since the entry was stored (hits). */
  age?: number;
  /** Embeddings: inputs answered from the cache, of all inputs. */
  items?: { hits: number; total: number };
}

export interface WriteLabels {
  endpoint: 'chat' | 'embeddings';
  route: string;
  lane: string;
}

export interface CacheService {
  readonly store: CacheStore;
  readonly metrics: CacheMetrics;
  readonly flights: SingleFlight;
  /** Stores entries off the client's path: at most MAX_PENDING_WRITES batches at once; more are dropped and counted. */
  write(entries: Array<{ key: EntryKey; value: string; ttlMs: number }>, labels: WriteLabels): void;
  /** Counts (and, rate-limited, logs) a store operation that failed or was skipped because the store is unreachable. */
  storeFailed(op: StoreOperation, err: unknown): void;
  /** Deletes an entry that must not be served, and counts why. */
  discard(key: EntryKey, reason: 'corrupt' | 'scope_mismatch'): void;
  purge(filter: PurgeFilter): Promise<number>;
  /** Resolves once the writes under way are done (shutdown, tests). */
  drain(): Promise<void>;
}

export interface CacheServiceOptions {
  config: CacheConfig;
  redis: RedisStore | undefined;
  registry: Registry;
  logger: Logger;
}

const MAX_PENDING_WRITES = 1_000;
const ERROR_LOG_INTERVAL_MS = 10_000;

export function createCacheService(options: CacheServiceOptions): CacheService {
  const { logger } = options;
  // Assigned below, once onError exists; the metrics read it only when scraped.
  // eslint-disable-next-line prefer-const -- the store's onError needs metrics, which need the store
  let store: CacheStore | undefined;
  const metrics = createCacheMetrics(options.registry, () => store);

  // An outage fails every request's lookup: one line per interval, not one per request.
  let lastLog = Number.NEGATIVE_INFINITY;
  let suppressed = 0;
  const onError = (op: StoreOperation, err: unknown) => {
    metrics.storeErrors.labels(op).inc();
    const now = Date.now();
    if (now - lastLog < ERROR_LOG_INTERVAL_MS) {
      suppressed++;
      return;
    }
    lastLog = now;
    // Only the message: a Redis error object can carry the command's arguments, i.e. a cached answer.
    logger.warn({ op, error: err instanceof Error ? err.message : String(err), suppressed }, 'cache store unavailable; serving uncached');
    suppressed = 0;
  };
  store = createCacheStore({ redis: options.redis, memoryMaxBytes: options.config.memory_max_bytes, onError });
  const flights = new SingleFlight();
  const pending = new Set<Promise<unknown>>();

  return {
    store,
    metrics,
    flights,
    storeFailed: onError,
    write(entries, labels) {
      if (entries.length === 0) return;
      if (!store.available()) {
        onError('set', new Error('store unreachable'));
        metrics.notStored.labels(labels.endpoint, 'store_unavailable').inc(entries.length);
        return;
      }
      if (pending.size >= MAX_PENDING_WRITES) {
        metrics.notStored.labels(labels.endpoint, 'write_queue_full').inc(entries.length);
        return;
      }
      const bytes = entries.reduce((n, e) => n + Buffer.byteLength(e.value), 0);
      const p = (entries.length === 1 ? store.set(entries[0]!.key, entries[0]!.value, entries[0]!.ttlMs) : store.setMany(entries)).then((ok) => {
        if (ok) metrics.storedBytes.labels(labels.endpoint, labels.route, labels.lane).inc(bytes);
        else metrics.notStored.labels(labels.endpoint, store!.kind === 'memory' ? 'oversized' : 'store_error').inc(entries.length);
      });
      pending.add(p);
      void p.finally(() => pending.delete(p));
    },
    discard(key, reason) {
      metrics.discarded.labels(reason).inc();
      if (reason === 'scope_mismatch') logger.error({ kind: key.kind, model: key.model, key: key.hash.slice(0, 12) }, 'cache entry stored for another scope or lane; not served, deleted');
      const p = store.delete(key);
      pending.add(p);
      void p.finally(() => pending.delete(p));
    },
    purge: (filter) => store.purge(filter),
    async drain() {
      while (pending.size > 0) await Promise.allSettled([...pending]);
    },
  };
}
