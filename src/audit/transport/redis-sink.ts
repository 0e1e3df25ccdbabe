// The Redis Streams sink, for several replicas: one stream per lane (see
// ../streams.ts for keys and entries, so each lane's retention is one XTRIM
// MINID), capped with XADD MAXLEN ~ audit.redis.max_len. Consumers read them with consumer
// groups (XGROUP CREATE <stream> archiver $; XREADGROUP ... STREAMS <stream> >)
// and ship them on to long-term storage. A key per record
// (`...{<lane>}:id:<request id>`, expiring with the lane's retention) finds
// a record by request id without a scan. Entries are not hash-chained
// (several replicas append to one stream; the stream's ids give the order),
// but each is sealed on its own, with prev = 64 zeros (chain.ts), so reading
// a record back checks it (read/integrity.ts).
//
// While Redis is down the writer spools records to local disk and replays
// them in order once it is back.
import type { RedisStore } from '../../stores/redis.js';
import { GENESIS, SEAL_BYTES, sealInto } from '../chain.js';
import { idKey, streamKey } from '../streams.js';
import type { PendingRecord } from './pending.js';
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
          f.kind === 'request' || f.kind === 'tool_call' ? o.retentionMs(item.chain) : 0,
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

/** A record's JSON sealed on its own (prev: genesis): its hash lets a reader check it. */
function sealed(json: Buffer): Buffer {
  const buffer = Buffer.allocUnsafe(json.length + SEAL_BYTES);
  sealInto(buffer, 0, json, GENESIS);
  return buffer;
}
