// The single-instance cache store: a Map kept in least-recently-used order
// (a hit moves its entry to the end), capped in bytes. Expired entries are
// dropped when read or when they reach the front.
import { matchesFilter, type CacheStore, type EntryKey } from './store.js';

interface Slot {
  key: EntryKey;
  value: string;
  bytes: number;
  expiresAt: number;
}

/** Map and object overhead per entry, roughly, so many tiny entries still count. */
const ENTRY_OVERHEAD_BYTES = 200;

export interface MemoryCacheStoreOptions {
  maxBytes: number;
  /** For tests. */
  now?: () => number;
}

export function createMemoryCacheStore(options: MemoryCacheStoreOptions): CacheStore {
  const slots = new Map<string, Slot>();
  const now = options.now ?? Date.now;
  let bytes = 0;

  const id = (k: EntryKey) => `${k.kind}\u0000${k.scope}\u0000${k.model}\u0000${k.hash}`;
  const remove = (name: string, slot: Slot) => {
    slots.delete(name);
    bytes -= slot.bytes;
  };
  const read = (k: EntryKey): string | undefined => {
    const name = id(k);
    const slot = slots.get(name);
    if (!slot) return undefined;
    if (slot.expiresAt <= now()) {
      remove(name, slot);
      return undefined;
    }
    slots.delete(name);
    slots.set(name, slot);
    return slot.value;
  };
  const write = (k: EntryKey, value: string, ttlMs: number): boolean => {
    // JS strings hold up to 2 bytes per character; UTF-8 length is close enough and cheap.
    const size = Buffer.byteLength(value) + k.hash.length + k.scope.length + k.model.length + ENTRY_OVERHEAD_BYTES;
    if (size > options.maxBytes) return false;
    const name = id(k);
    const old = slots.get(name);
    if (old) remove(name, old);
    slots.set(name, { key: k, value, bytes: size, expiresAt: now() + ttlMs });
    bytes += size;
    for (const [oldest, slot] of slots) {
      if (bytes <= options.maxBytes) break;
      remove(oldest, slot);
    }
    return true;
  };

  return {
    kind: 'memory',
    available: () => true,
    get: async (k) => read(k),
    getMany: async (keys) => keys.map(read),
    set: async (k, value, ttlMs) => write(k, value, ttlMs),
    async setMany(entries) {
      let ok = true;
      for (const e of entries) ok = write(e.key, e.value, e.ttlMs) && ok;
      return ok;
    },
    async delete(k) {
      const name = id(k);
      const slot = slots.get(name);
      if (slot) remove(name, slot);
    },
    async purge(filter) {
      let n = 0;
      for (const [name, slot] of slots) {
        if (!matchesFilter(slot.key, filter)) continue;
        remove(name, slot);
        n++;
      }
      return n;
    },
    stats: () => ({ entries: slots.size, bytes }),
  };
}
