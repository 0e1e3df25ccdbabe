// Where cache entries live. One small interface, two implementations: Redis
// (shared by every replica) and an in-memory LRU with a byte cap (the
// single-instance default). A store never throws into a request: an
// unreachable or failing backend reads as a miss and writes as a no-op, and
// reports the failure through `onError` for metrics and logs.
import type { RedisStore } from '../stores/redis.js';
import { createMemoryCacheStore } from './memory-store.js';
import { createRedisCacheStore } from './redis-store.js';

export type EntryKind = 'chat' | 'embedding';

/** An entry's address. `scope` and `model` are kept apart (not only hashed into `hash`) so entries can be purged by them. */
export interface EntryKey {
  kind: EntryKind;
  /** `shared`, `team:<team>` or `key:<key id>`. */
  scope: string;
  /** The configured model name the entry was answered for. */
  model: string;
  /** sha256 hex of the request's answer-changing content (keys.ts). */
  hash: string;
}

export interface PurgeFilter {
  scope?: string;
  model?: string;
}

export type StoreOperation = 'get' | 'set' | 'delete' | 'purge';

export interface CacheStore {
  readonly kind: 'memory' | 'redis';
  /** False while the backend is known to be unreachable: callers skip the cache rather than wait. */
  available(): boolean;
  /** The stored text, or undefined on a miss (or when the backend failed). */
  get(key: EntryKey): Promise<string | undefined>;
  /** Several at once, in one round trip. */
  getMany(keys: readonly EntryKey[]): Promise<Array<string | undefined>>;
  /** Resolves false when the value was not stored (backend failure, or larger than the memory cap). */
  set(key: EntryKey, value: string, ttlMs: number): Promise<boolean>;
  setMany(entries: ReadonlyArray<{ key: EntryKey; value: string; ttlMs: number }>): Promise<boolean>;
  delete(key: EntryKey): Promise<void>;
  /** Deletes every entry matching all the filter's fields (none: every cache entry); resolves how many. Rejects when the backend fails (an admin action, reported as such). */
  purge(filter: PurgeFilter): Promise<number>;
  /** Entries and bytes held, for stores that know (memory). */
  stats(): { entries: number; bytes: number } | undefined;
}

export interface CacheStoreOptions {
  /** Shared Redis connection; without it entries stay in this process. */
  redis: RedisStore | undefined;
  memoryMaxBytes: number;
  onError(op: StoreOperation, err: unknown): void;
}

export function createCacheStore(options: CacheStoreOptions): CacheStore {
  return options.redis ? createRedisCacheStore(options.redis, options.onError) : createMemoryCacheStore({ maxBytes: options.memoryMaxBytes });
}

export function matchesFilter(key: Pick<EntryKey, 'scope' | 'model'>, filter: PurgeFilter): boolean {
  return (filter.scope === undefined || key.scope === filter.scope) && (filter.model === undefined || key.model === filter.model);
}
