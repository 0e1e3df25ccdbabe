// The shared cache store: one Redis string per entry, with a TTL. Keys are
// `<prefix>:v1:cache:<layout>:<kind>:<scope>:<model>:<sha256>`: namespaced
// by the gateway's key prefix, versioned twice (the store's KEY_VERSION and
// this cache's own layout, so a change of key or entry format never reads
// old entries), and carrying scope and model (URI-encoded) so an admin can
// purge by them. The request itself is only ever in the hash.
//
// The connection fails fast while Redis is down (see stores/redis.ts), so a
// lookup then costs nothing; every failure is reported, never thrown.
import type { RedisStore } from '../stores/redis.js';
import { ENTRY_FORMAT } from './entry.js';
import { KEY_FORMAT } from './keys.js';
import { matchesFilter, type CacheStore, type EntryKey, type EntryKind, type PurgeFilter, type StoreOperation } from './store.js';

const LAYOUT = `f${KEY_FORMAT}.${ENTRY_FORMAT}`;
const KINDS: readonly EntryKind[] = ['chat', 'embedding'];
const SCAN_COUNT = 1_000;

/** URI-encoding leaves `*` alone, and it is the one glob character SCAN MATCH would still read. */
function token(part: string): string {
  return encodeURIComponent(part).replace(/\*/g, '%2A');
}

export function createRedisCacheStore(redis: RedisStore, onError: (op: StoreOperation, err: unknown) => void): CacheStore {
  const name = (k: EntryKey) => redis.key('cache', LAYOUT, k.kind, token(k.scope), token(k.model), k.hash);
  const client = redis.client;

  async function purge(filter: PurgeFilter): Promise<number> {
    let deleted = 0;
    for (const kind of KINDS) {
      const pattern = redis.key('cache', LAYOUT, kind, filter.scope === undefined ? '*' : token(filter.scope), filter.model === undefined ? '*' : token(filter.model), '*');
      let cursor = '0';
      do {
        const [next, keys] = await client.scan(cursor, 'MATCH', pattern, 'COUNT', SCAN_COUNT);
        cursor = next;
        // `*` may span `:` in a glob, so each key's own parts decide.
        const doomed = keys.filter((k) => {
          const parts = k.split(':');
          const scope = decodeURIComponent(parts.at(-3) ?? '');
          const model = decodeURIComponent(parts.at(-2) ?? '');
          return parts.at(-4) === kind && matchesFilter({ scope, model }, filter);
        });
        if (doomed.length > 0) deleted += await client.unlink(...doomed);
      } while (cursor !== '0');
    }
    return deleted;
  }

  return {
    kind: 'redis',
    available: () => redis.isReady(),
    async get(k) {
      try {
        return (await client.get(name(k))) ?? undefined;
      } catch (err) {
        onError('get', err);
        return undefined;
      }
    },
    async getMany(keys) {
      if (keys.length === 0) return [];
      try {
        return (await client.mget(keys.map(name))).map((v) => v ?? undefined);
      } catch (err) {
        onError('get', err);
        return keys.map(() => undefined);
      }
    },
    async set(k, value, ttlMs) {
      try {
        await client.set(name(k), value, 'PX', Math.max(1, Math.round(ttlMs)));
        return true;
      } catch (err) {
        onError('set', err);
        return false;
      }
    },
    async setMany(entries) {
      if (entries.length === 0) return true;
      try {
        const pipeline = client.pipeline();
        for (const e of entries) pipeline.set(name(e.key), e.value, 'PX', Math.max(1, Math.round(e.ttlMs)));
        const results = (await pipeline.exec()) ?? [];
        const failed = results.find(([err]) => err);
        if (failed?.[0]) throw failed[0];
        return true;
      } catch (err) {
        onError('set', err);
        return false;
      }
    },
    async delete(k) {
      try {
        await client.unlink(name(k));
      } catch (err) {
        onError('delete', err);
      }
    },
    async purge(filter) {
      try {
        return await purge(filter);
      } catch (err) {
        onError('purge', err);
        throw err;
      }
    },
    stats: () => undefined,
  };
}
