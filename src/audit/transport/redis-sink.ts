// The Redis Streams sink, for several replicas: one stream per lane
// (`<prefix>:v1:audit:{<lane>}`, so each lane's retention is one XTRIM MINID),
// each entry `id <request id> kind <kind> time <ISO> record <JSON>`, capped
// with XADD MAXLEN ~ audit.redis.max_len. Consumers read them with consumer
// groups (XGROUP CREATE <stream> archiver $; XREADGROUP ... STREAMS <stream> >)
// and ship them on to long-term storage. A key per record
// (`...{<lane>}:id:<request id>`, expiring with the lane's retention) finds
// a record by request id without a scan. Entries are not hash-chained
// (several replicas append to one stream; the stream's ids give the order),
// but each is sealed on its own, with prev = 64 zeros (chain.ts), so reading
// a record back checks it (integrity.ts).
//
// While Redis is down the writer spools records to local disk and replays
// them in order once it is back.
import type { RedisStore } from '../../stores/redis.js';
import { GENESIS, SEAL_BYTES, sealInto } from '../chain.js';
import { readRecord } from '../read/integrity.js';
import type { PendingRecord } from './pending.js';
import { facetsOf } from './pending.js';
import { encodeCursor, statusMatches, type AuditFilter, type AuditPage, type AuditQuery } from '../read/query.js';
import type { AuditBackend, WriteOutcome } from './writer.js';

const ADD = `
local entry = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'id', ARGV[2], 'kind', ARGV[3], 'time', ARGV[4], 'record', ARGV[5])
if tonumber(ARGV[6]) > 0 then redis.call('SET', KEYS[2], entry, 'PX', ARGV[6]) end
return entry
`;
const SCRIPT = 'lanegate_audit_add';

export interface RedisAuditOptions {
  redis: RedisStore;
  maxLen: number;
  /** Retention of a chain (lane) in ms, from the current config. */
  retentionMs(chain: string): number;
}

export function streamKey(redis: RedisStore, chain: string): string {
  // The hash tag keeps a lane's stream and its id keys in one cluster slot.
  return redis.key('audit', `{${chain}}`);
}

function idKey(redis: RedisStore, chain: string, id: string): string {
  return redis.key('audit', `{${chain}}`, 'id', id);
}

type Scripted = { [name: string]: (...args: Array<string | number | Buffer>) => unknown };

export function createRedisBackend(o: RedisAuditOptions): AuditBackend {
  const { redis } = o;
  redis.client.defineCommand(SCRIPT, { numberOfKeys: 2, lua: ADD });
  return {
    kind: 'redis',
    async write(batch): Promise<WriteOutcome> {
      if (!redis.isReady()) return { failed: batch, error: new Error('redis is not connected') };
      const pipeline = redis.client.pipeline();
      for (const item of batch) {
        const f = item.facets;
        (pipeline as unknown as Scripted)[SCRIPT]!(
          streamKey(redis, item.chain),
          idKey(redis, item.chain, f.id),
          o.maxLen,
          f.id,
          f.kind,
          new Date(f.time).toISOString(),
          sealed(item.bytes),
          f.kind === 'request' ? o.retentionMs(item.chain) : 0,
        );
      }
      let results: Array<[Error | null, unknown]>;
      try {
        results = ((await pipeline.exec()) ?? []) as Array<[Error | null, unknown]>;
      } catch (error) {
        return { failed: batch, error };
      }
      const failed: PendingRecord[] = [];
      let error: unknown;
      batch.forEach((item, i) => {
        const r = results[i];
        if (!r || r[0]) {
          error ??= r?.[0] ?? new Error('no reply from redis');
          failed.push(item);
        }
      });
      return { failed, error };
    },
    async ready() {
      return redis.isReady();
    },
    async sync() {},
    async close() {},
  };
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

/** A record's JSON sealed on its own (prev: genesis): its hash lets a reader check it. */
function sealed(json: Buffer): Buffer {
  const buffer = Buffer.allocUnsafe(json.length + SEAL_BYTES);
  sealInto(buffer, 0, json, GENESIS);
  return buffer;
}

function parseEntry(fields: string[]): Record<string, unknown> | undefined {
  for (let i = 0; i + 1 < fields.length; i += 2) {
    // Entries written before records were sealed carry no hash: they read as `unsealed`.
    if (fields[i] === 'record') return readRecord(fields[i + 1]!, { sealed: 'optional' });
  }
  return undefined;
}

/**
 * The JSON text of every record in every lane's stream filed in [from, to)
 * (stream ids are the milliseconds an entry reached Redis, never before its
 * request arrived), a page of 500 entries at a time: the usage ledger's
 * source when the records live in Redis.
 */
export async function* streamRecordLines(redis: RedisStore, from = 0, to = Infinity): AsyncGenerator<string> {
  for (const key of (await auditStreams(redis)).values()) {
    let start = String(Math.max(0, Math.floor(from)));
    for (;;) {
      const entries = await redis.client.xrange(key, start, '+', 'COUNT', 500);
      if (entries.length === 0) break;
      for (const [, fields] of entries) {
        for (let i = 0; i + 1 < fields.length; i += 2) if (fields[i] === 'record') yield fields[i + 1]!;
      }
      const lastId = entries.at(-1)![0];
      // Past the window by more than a long request: nothing later can be in it.
      if (Number(lastId.split('-')[0]) > to + 3_600_000) break;
      start = `(${lastId}`;
    }
  }
}

const SCAN_LIMIT = 100_000;

export function createRedisQuery(redis: RedisStore, chains: () => string[]): AuditQuery {
  return {
    async get(id) {
      const names = chains();
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
      // Entries are filed by when they reached Redis, never before the request arrived.
      const start = filter.after ? String(Math.max(filter.after.time, filter.from ?? 0)) : filter.from !== undefined ? String(filter.from) : '-';
      const found: Array<{ time: number; id: string; record: Record<string, unknown> }> = [];
      for (const [chain, key] of streams) {
        if (filter.lane !== undefined && chain !== filter.lane) continue;
        let from = start;
        let scanned = 0;
        let inStream = 0;
        while (scanned < SCAN_LIMIT && inStream <= filter.limit) {
          const entries = await redis.client.xrange(key, from, '+', 'COUNT', 500);
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
            if (filter.after && (f.time < filter.after.time || (f.time === filter.after.time && f.id <= filter.after.id))) continue;
            found.push({ ...view, record });
            inStream++;
          }
          const lastId = entries.at(-1)![0];
          from = `(${lastId}`;
          // Past the window by more than a long request: nothing later can match.
          if (filter.to !== undefined && Number(lastId.split('-')[0]) > filter.to + 3_600_000) break;
        }
      }
      found.sort((a, b) => a.time - b.time || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
      const page = found.slice(0, filter.limit);
      const last = page.at(-1);
      return { data: page.map((p) => p.record), ...(found.length > filter.limit && last ? { next: encodeCursor(last) } : {}) };
    },
  };
}
