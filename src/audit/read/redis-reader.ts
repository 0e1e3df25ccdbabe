// The reader over the Redis Streams sink's streams (reader.ts): every
// chain's stream, a page of 500 entries at a time.
import type { RedisStore } from '../../stores/redis.js';
import { auditStreams, pastWindow } from '../streams.js';
import { createReader, type AuditReader, type StoredLine, type TimeRange } from './reader.js';

export function createRedisReader(redis: RedisStore): AuditReader {
  return createReader('redis streams', (range) => streamLines(redis, range));
}

/**
 * The entries filed in the range: stream ids are the milliseconds an entry
 * reached Redis, never before its request arrived.
 */
async function* streamLines(redis: RedisStore, range: TimeRange): AsyncGenerator<StoredLine> {
  const to = range.to ?? Infinity;
  for (const key of (await auditStreams(redis)).values()) {
    let start = String(Math.max(0, Math.floor(range.from ?? 0)));
    for (;;) {
      const entries = await redis.client.xrange(key, start, '+', 'COUNT', 500);
      if (entries.length === 0) break;
      for (const [, fields] of entries) {
        // Entries of older versions were not sealed yet.
        for (let i = 0; i + 1 < fields.length; i += 2) if (fields[i] === 'record') yield { line: fields[i + 1]!, sealed: 'optional' };
      }
      const lastId = entries.at(-1)![0];
      if (pastWindow(lastId, to)) break;
      start = `(${lastId}`;
    }
  }
}
