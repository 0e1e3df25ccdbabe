// The cache's Prometheus metrics, on the gateway's registry. Labels are
// config names (route, lane) and fixed sets only.
import { Counter, type Registry } from 'prom-client';
import { FastCounter, FastGauge } from '../telemetry/fast-metrics.js';
import type { CacheStore } from './store.js';

export interface CacheMetrics {
  /** Per request; for embeddings `hit` means every input hit, `partial` some. */
  requests: Counter<'endpoint' | 'route' | 'lane' | 'result'>;
  embeddingItems: Counter<'route' | 'lane' | 'result'>;
  storedBytes: Counter<'endpoint' | 'route' | 'lane'>;
  notStored: Counter<'endpoint' | 'reason'>;
  savedTokens: Counter<'route' | 'lane' | 'direction'>;
  savedUsd: Counter<'route' | 'lane'>;
  storeErrors: Counter<'op'>;
  discarded: Counter<'reason'>;
  singleFlight: Counter<'outcome'>;
}

export function createCacheMetrics(registry: Registry, store: () => CacheStore | undefined): CacheMetrics {
  const registers = [registry];
  new FastGauge({
    name: 'lanegate_cache_memory_bytes',
    help: 'Bytes held by the in-memory cache store (0 when the store is Redis).',
    registers,
    collect() {
      this.set(store()?.stats()?.bytes ?? 0);
    },
  });
  return {
    requests: new FastCounter({
      name: 'lanegate_cache_requests_total',
      help: 'Cacheable-endpoint requests by cache result (hit, miss, bypass; embeddings also partial), endpoint, route and lane.',
      labelNames: ['endpoint', 'route', 'lane', 'result'],
      registers,
    }),
    embeddingItems: new FastCounter({
      name: 'lanegate_cache_embedding_items_total',
      help: 'Embedding inputs served from the cache (hit) or sent upstream (miss), by route and lane.',
      labelNames: ['route', 'lane', 'result'],
      registers,
    }),
    storedBytes: new FastCounter({
      name: 'lanegate_cache_stored_bytes_total',
      help: 'Bytes written to the cache store, by endpoint, route and lane.',
      labelNames: ['endpoint', 'route', 'lane'],
      registers,
    }),
    notStored: new FastCounter({
      name: 'lanegate_cache_not_stored_total',
      help: 'Answers to cacheable requests that were not stored, by reason (oversized, incomplete, approvals, store_error...).',
      labelNames: ['endpoint', 'reason'],
      registers,
    }),
    savedTokens: new FastCounter({
      name: 'lanegate_cache_saved_tokens_total',
      help: 'Tokens answered from the cache instead of upstream, by route, lane and direction (input, output).',
      labelNames: ['route', 'lane', 'direction'],
      registers,
    }),
    savedUsd: new FastCounter({
      name: 'lanegate_cache_saved_usd_total',
      help: 'USD not spent upstream thanks to cache hits, priced like the answering deployment, by route and lane.',
      labelNames: ['route', 'lane'],
      registers,
    }),
    storeErrors: new FastCounter({
      name: 'lanegate_cache_store_errors_total',
      help: 'Cache store operations that failed or were skipped because the store was unreachable; requests went on uncached.',
      labelNames: ['op'],
      registers,
    }),
    discarded: new FastCounter({
      name: 'lanegate_cache_discarded_entries_total',
      help: 'Entries found but not served, and deleted: corrupt (malformed or truncated) or scope_mismatch (stored for another scope or lane).',
      labelNames: ['reason'],
      registers,
    }),
    singleFlight: new FastCounter({
      name: 'lanegate_cache_single_flight_total',
      help: 'Requests that waited for an identical one in flight: served (its answer), none (it had no answer to share), timeout.',
      labelNames: ['outcome'],
      registers,
    }),
  };
}
