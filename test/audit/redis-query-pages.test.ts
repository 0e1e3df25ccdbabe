// Paging a Redis Streams audit trail newest first (the console's order):
// each page starts at its cursor (or `to`), so a page deep in a long trail
// is found within the scan limit and nothing is read twice. The trail is
// written in the sink's entry layout with the entry ids a trail written over
// two weeks would have; the scan limit is lowered so "deep" is a few pages.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createRedisQuery } from '../../src/audit/read/redis-query.js';
import type { AuditFilter } from '../../src/audit/read/query.js';
import { streamKey } from '../../src/audit/streams.js';
import { createRedisClient, type RedisStore } from '../../src/stores/redis.js';
import { createLogger } from '../../src/telemetry/logger.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';

const CHAINS = ['green', 'red'];
const PER_CHAIN = 2000;
const SCAN_LIMIT = 1000;
const STEP_MS = 5 * 60_000;
const START = Date.parse('2026-11-01T00:00:00Z');

interface Written {
  id: string;
  time: number;
}

const newestFirst = (a: Written, b: Written) => b.time - a.time || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0);

describe('audit query (Redis) – newest-first pages', () => {
  let redis: TestRedis;
  let store: RedisStore;
  const written: Written[] = [];

  before(async () => {
    redis = await startRedis();
    store = createRedisClient({ url: redis.url, keyPrefix: 'pages', logger: createLogger({ level: 'silent' }), commandTimeoutMs: 10_000 });
    while (!(await store.ping())) await new Promise((r) => setTimeout(r, 20));
    for (const [c, chain] of CHAINS.entries()) {
      const entries: Array<{ at: number; n: number; fields: string[] }> = [];
      for (let n = 0; n < PER_CHAIN; n++) {
        const time = START + n * STEP_MS + c * 1000;
        // Most records reach Redis within milliseconds; every 97th was a long
        // request, filed 40 minutes after it arrived (behind later records).
        const lag = n % 97 === 0 ? 40 * 60_000 : 3;
        const id = `req-${chain}-${String(n).padStart(5, '0')}`;
        const record = { v: 2, kind: 'request', id, time: new Date(time).toISOString(), team: 'alpha', app: 'app', model: 'fast', lane: { name: chain }, status: 200 };
        entries.push({ at: time + lag, n, fields: ['id', id, 'kind', 'request', 'time', record.time, 'record', JSON.stringify(record)] });
        written.push({ id, time });
      }
      // A stream's ids only grow: entries go in in the order they reached Redis.
      entries.sort((a, b) => a.at - b.at);
      const pipeline = store.client.pipeline();
      for (const e of entries) pipeline.xadd(streamKey(store, chain), `${e.at}-${e.n}`, ...e.fields);
      for (const [err] of (await pipeline.exec()) ?? []) assert.ifError(err);
    }
  });
  after(async () => {
    await store?.close();
    await redis?.stop();
  });

  const ids = (data: Array<Record<string, unknown>>) => data.map((r) => String(r.id));

  it('list – following `next` newest first returns every record once, in order, past the scan limit', async () => {
    const q = createRedisQuery(store, { scanLimit: SCAN_LIMIT });
    const seen: string[] = [];
    let filter: AuditFilter = { limit: 150, order: 'newest' };
    for (let pages = 0; pages < 100; pages++) {
      const page = await q.list(filter);
      assert.ok(page.data.length > 0 || !page.next, 'a page with a next holds records');
      seen.push(...ids(page.data));
      if (!page.next) break;
      const [time, id] = Buffer.from(page.next, 'base64url').toString('utf8').split(/:(.*)/s) as [string, string];
      filter = { ...filter, after: { time: Number(time), id } };
    }
    assert.equal(seen.length, written.length);
    assert.deepEqual(seen, [...written].sort(newestFirst).map((w) => w.id));
  });

  it('list – times no stream id can hold (far future, negative, a made-up cursor) are bounds, not errors', async () => {
    const q = createRedisQuery(store, { scanLimit: SCAN_LIMIT });
    const newestId = [...written].sort(newestFirst)[0]!.id;
    for (const order of ['newest', 'oldest'] as const) {
      assert.equal(ids((await q.list({ limit: 1, order, to: 1e20 })).data).length, 1);
      assert.equal((await q.list({ limit: 1, order, from: 1e20 })).data.length, 0);
      assert.equal((await q.list({ limit: 1, order, to: -5 })).data.length, 0);
    }
    assert.deepEqual(ids((await q.list({ limit: 1, order: 'newest', after: { time: 1e300, id: 'x' } })).data), [newestId]);
    assert.equal((await q.list({ limit: 1, order: 'newest', after: { time: -1e300, id: 'x' } })).data.length, 0);
  });

  it('list – a newest-first page bounded by `to` deep in the trail starts there', async () => {
    const q = createRedisQuery(store, { scanLimit: SCAN_LIMIT });
    const to = START + 300 * STEP_MS;
    const page = await q.list({ limit: 40, order: 'newest', to });
    const want = written.filter((w) => w.time <= to).sort(newestFirst);
    assert.deepEqual(ids(page.data), want.slice(0, 40).map((w) => w.id));
    assert.ok(page.next);
  });
});
