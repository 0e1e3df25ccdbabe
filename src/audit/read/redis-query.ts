// Queries over the Redis Streams sink (the admin API): one record by request
// id through its id key, or a filtered page in time order read from each
// lane's stream with XRANGE. Each entry is checked against its own seal
// (integrity.ts); entries older than sealing read as `unsealed`.
import type { RedisStore } from '../../stores/redis.js';
import { auditStreams, ENTRY_LAG_MS, idKey, pastWindow, streamKey } from '../streams.js';
import { facetsOf } from '../transport/pending.js';
import { readRecord } from './integrity.js';
import { byTime, encodeCursor, pastCursor, statusMatches, type AuditFilter, type AuditPage, type AuditQuery } from './query.js';

function parseEntry(fields: string[]): Record<string, unknown> | undefined {
  for (let i = 0; i + 1 < fields.length; i += 2) {
    // Entries written before records were sealed carry no hash: they read as `unsealed`.
    if (fields[i] === 'record') return readRecord(fields[i + 1]!, { sealed: 'optional' });
  }
  return undefined;
}

/**
 * A time as a stream id bound. Times come from a query (any number the
 * filter's parser takes, a cursor a client may have made up): `1e+20` or a
 * negative one is no stream id, and Redis would refuse the whole search.
 */
function entryAt(ms: number): string {
  return String(Math.min(Math.max(0, Math.floor(ms)), Number.MAX_SAFE_INTEGER));
}

export interface RedisQueryOptions {
  /** The most entries one search reads per stream (default 100 000): a search that finds little stops there. */
  scanLimit?: number;
}

export function createRedisQuery(redis: RedisStore, o: RedisQueryOptions = {}): AuditQuery {
  const scanLimit = o.scanLimit ?? 100_000;
  return {
    async get(id) {
      // Every stream there is, not the configured lanes: lanes since removed,
      // and the gateway's own chains (_gateway, _purges, _prompts), hold records too.
      const names = [...(await auditStreams(redis)).keys()];
      const keys = names.map((c) => idKey(redis, c, id));
      const entries = await Promise.all(keys.map((k) => redis.client.get(k)));
      for (let i = 0; i < names.length; i++) {
        const entry = entries[i];
        if (!entry) continue;
        const found = await redis.client.xrange(streamKey(redis, names[i]!), entry, entry);
        const record = found[0] ? parseEntry(found[0][1]) : undefined;
        if (record) return record;
      }
      return undefined;
    },
    async list(filter: AuditFilter): Promise<AuditPage> {
      const streams = await auditStreams(redis);
      const newest = filter.order === 'newest';
      // Entries are filed by when they reached Redis, never before the request arrived.
      const lower = newest ? (filter.from !== undefined ? entryAt(filter.from) : '-') : filter.after ? entryAt(Math.max(filter.after.time, filter.from ?? 0)) : filter.from !== undefined ? entryAt(filter.from) : '-';
      // Newest first, a page starts at its cursor or `to`, not at the newest
      // entry: re-reading everything newer made each page cost more than the
      // last, and past the scan limit a deep page came back empty. A record
      // reaches Redis up to ENTRY_LAG_MS after its time, so the read starts
      // that much above it (what it re-reads there is skipped by its time).
      const ceiling = Math.min(filter.after?.time ?? Infinity, filter.to ?? Infinity);
      const upper = newest && ceiling !== Infinity ? entryAt(ceiling + ENTRY_LAG_MS) : '+';
      const found: Array<{ time: number; id: string; record: Record<string, unknown> }> = [];
      for (const [chain, key] of streams) {
        if (filter.lane !== undefined && chain !== filter.lane) continue;
        let from = lower;
        let to = upper;
        let scanned = 0;
        let inStream = 0;
        while (scanned < scanLimit && inStream <= filter.limit) {
          const entries = newest ? await redis.client.xrevrange(key, to, from, 'COUNT', 500) : await redis.client.xrange(key, from, to, 'COUNT', 500);
          if (entries.length === 0) break;
          for (const [, fields] of entries) {
            scanned++;
            const record = parseEntry(fields);
            if (!record) continue;
            const f = facetsOf(record);
            const view = { time: f.time, id: f.id };
            if (filter.to !== undefined && f.time > filter.to) continue;
            if (filter.from !== undefined && f.time < filter.from) continue;
            if (filter.team !== undefined && f.team !== filter.team) continue;
            if (filter.app !== undefined && f.app !== filter.app) continue;
            if (filter.model !== undefined && f.model !== filter.model) continue;
            if (filter.kind !== undefined && f.kind !== filter.kind) continue;
            if (!statusMatches(filter.status, f.status)) continue;
            if (!pastCursor(filter, view)) continue;
            found.push({ ...view, record });
            inStream++;
          }
          const lastId = entries.at(-1)![0];
          if (newest) to = `(${lastId}`;
          else {
            from = `(${lastId}`;
            // Past the window by more than a long request: nothing later can match.
            if (filter.to !== undefined && pastWindow(lastId, filter.to)) break;
          }
        }
      }
      found.sort((a, b) => (newest ? byTime(b, a) : byTime(a, b)));
      const page = found.slice(0, filter.limit);
      const last = page.at(-1);
      return { data: page.map((p) => p.record), ...(found.length > filter.limit && last ? { next: encodeCursor(last) } : {}) };
    },
  };
}
