// Where the Redis Streams sink keeps records, as files.ts is for the file
// sink: one stream per chain (a lane, or _gateway / _purges),
// `<prefix>:v1:audit:{<chain>}`, so each lane's retention is one XTRIM MINID,
// and a key per request record, `...{<chain>}:id:<request id>`, that finds
// it without a scan. Entries are `id <request id> kind <kind> time <ISO>
// record <JSON>`; an entry's stream id is the millisecond it reached Redis.
import type { RedisStore } from '../stores/redis.js';

export function streamKey(redis: RedisStore, chain: string): string {
  // The hash tag keeps a lane's stream and its id keys in one cluster slot.
  return redis.key('audit', `{${chain}}`);
}

export function idKey(redis: RedisStore, chain: string, id: string): string {
  return redis.key('audit', `{${chain}}`, 'id', id);
}

/** Stream keys of every chain in Redis (SCAN, so lanes since removed from config are found too). */
export async function auditStreams(redis: RedisStore): Promise<Map<string, string>> {
  const prefix = redis.key('audit', '');
  const out = new Map<string, string>();
  let cursor = '0';
  do {
    const [next, keys] = await redis.client.scan(cursor, 'MATCH', `${prefix}{*}`, 'COUNT', 500, 'TYPE', 'stream');
    cursor = next;
    for (const key of keys) {
      const m = /\{([^}]+)\}$/.exec(key);
      if (m) out.set(m[1]!, key);
    }
  } while (cursor !== '0');
  return out;
}

/**
 * How long after its time (when the request arrived) a record may reach
 * Redis: the longest a request can take, with room. An entry's id is at
 * least its record's time and at most this much later.
 */
export const ENTRY_LAG_MS = 3_600_000;

/** Whether a read past this entry id can stop: more than a long request after `to`, no later entry holds a record timed before it. */
export function pastWindow(entryId: string, to: number): boolean {
  return Number(entryId.split('-')[0]) > to + ENTRY_LAG_MS;
}
