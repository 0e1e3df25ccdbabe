// The work store when replicas share Redis: one stream of work items read by
// one consumer group, so any replica runs any line. An item a replica took
// and did not acknowledge within claim_idle_ms (it died mid-line) is taken
// over with XAUTOCLAIM. A line's result, its count and the acknowledgement
// are one Lua script: the result is written only if the line has none yet
// (HSETNX, the done marker), so a line is answered exactly once however many
// replicas ran it.
//
// A replica holding a line for longer than claim_idle_ms (a slow upstream, a
// backoff after a 429) is alive, not dead: while it holds a line it renews
// its claim every claim_idle_ms/3 (XCLAIM JUSTID to itself, which resets the
// entry's idle time), so XAUTOCLAIM on another replica does not take it over
// and run it twice. Renewing stops when the line is acknowledged or let go.
// A line claimed and not started (the replica lost its room for it) is given
// back: marked idle for the claim timeout, so any replica's next XAUTOCLAIM
// takes it at once (src/queue/worker.ts).
import { randomUUID } from 'node:crypto';
import type { RedisStore } from '../stores/redis.js';
import { isFinal, type BatchRecord, type Delivery, type LineCounts, type LineResult, type WorkItem, type WorkStore } from './types.js';

const GROUP = 'workers';
/** Results read per round trip when a batch's files are written. */
const RESULTS_CHUNK = 500;
/** XAUTOCLAIM at most this often per replica: the scan is cheap but not free. */
const AUTOCLAIM_EVERY_MS = 500;

// KEYS: results hash, counts hash, stream. ARGV: field, result, outcome, group, entry id.
const COMPLETE = `
local won = redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2])
if won == 1 then redis.call('HINCRBY', KEYS[2], ARGV[3], 1) end
redis.call('XACK', KEYS[3], ARGV[4], ARGV[5])
redis.call('XDEL', KEYS[3], ARGV[5])
return won
`;

// KEYS: stream. ARGV: group, consumer, entry ids. Only entries still pending
// for this consumer are renewed: one another replica took over (this one
// stalled past the timeout) stays with it. Returns the ids no longer held.
const RENEW = `
local lost = {}
for i = 3, #ARGV do
  local mine = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1, ARGV[2])
  if #mine == 1 then redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[i], 'JUSTID')
  else lost[#lost + 1] = ARGV[i] end
end
return lost
`;

// KEYS: a finalize lock. ARGV: the holder's token, the lock's lifetime in ms.
// Only the holder renews it (or, with no lifetime, lets it go): a lock that
// ran out and was taken by another replica is that replica's.
const FINALIZE_LOCK = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if ARGV[2] == '' then redis.call('DEL', KEYS[1]) else redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 1
`;

// KEYS: stream. ARGV: group, consumer, entry id, idle ms. An entry this consumer claimed and did not start is marked
// idle for the claim timeout (still pending, for this consumer), so the next XAUTOCLAIM of any replica takes it;
// one another replica took over already is left alone.
const GIVE_BACK = `
local mine = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1, ARGV[2])
if #mine == 1 then redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[3], 'IDLE', ARGV[4], 'JUSTID') end
return #mine
`;

// KEYS: batch, active set. ARGV: the record as read, the new record, batch id, 1 when the new status is final.
// Compare-and-set on the record's whole text: a write in between makes it return 0 and the caller read again.
const UPDATE_BATCH = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2])
if ARGV[4] == '1' then redis.call('SREM', KEYS[2], ARGV[3]) else redis.call('SADD', KEYS[2], ARGV[3]) end
return 1
`;

const OUTCOME_FIELD = { ok: 'completed', error: 'failed', expired: 'failed', cancelled: 'cancelled' } as const;

type StreamEntry = [id: string, fields: string[]];

export interface RedisWorkStoreOptions {
  /**
   * A line's claim, and a batch's finalize lock, not renewed within this is
   * taken over: its holder is taken for dead. Holders renew every third of it.
   */
  claimIdleMs: number;
  /** A renewal that failed (Redis unreachable): it is tried again at the next interval. */
  onRenewError?: (err: unknown) => void;
}

export async function openRedisWorkStore(redis: RedisStore, options: RedisWorkStoreOptions): Promise<WorkStore> {
  const client = redis.client;
  const stream = redis.key('queue', 'stream');
  const batchKey = (id: string) => redis.key('queue', 'batch', encodeURIComponent(id));
  const teamKey = (team: string) => redis.key('queue', 'team', encodeURIComponent(team));
  const activeKey = redis.key('queue', 'active');
  const resultsKey = (owner: string) => redis.key('queue', 'results', encodeURIComponent(owner));
  const countsKey = (owner: string) => redis.key('queue', 'counts', encodeURIComponent(owner));
  const lockKey = (owner: string) => redis.key('queue', 'finalize', encodeURIComponent(owner));

  // The consumer group is made on first read, not at open: a gateway that
  // starts while Redis is unreachable still starts, and its worker's reads
  // (retried) make the group once Redis answers. A Redis that lost its data
  // (restarted without persistence) answers NOGROUP, and the group is made again.
  let group: Promise<void> | undefined;
  const ensureGroup = (): Promise<void> =>
    (group ??= client.xgroup('CREATE', stream, GROUP, '0', 'MKSTREAM').then(
      () => undefined,
      (err: unknown) => {
        if (String(err).includes('BUSYGROUP')) return;
        group = undefined;
        throw err;
      },
    ));
  const readGroup = async <T>(read: () => Promise<T>): Promise<T> => {
    await ensureGroup();
    try {
      return await read();
    } catch (err) {
      if (!String(err).includes('NOGROUP')) throw err;
      group = undefined;
      await ensureGroup();
      return read();
    }
  };
  await ensureGroup().catch(() => {
    // Redis is not answering yet: the first claim makes the group.
  });
  let lastAutoclaim = 0;

  // Finalize locks this store holds, by batch id: each is renewed while held,
  // so a finalize that takes longer than the lock's lifetime (a large output
  // file, a slow S3 multipart upload) is not started again by another
  // replica's sweep. A holder that dies stops renewing, and its lock runs out.
  const finalizing = new Map<string, { token: string; timer: NodeJS.Timeout }>();
  const dropFinalizeLock = (owner: string) => {
    clearInterval(finalizing.get(owner)?.timer);
    finalizing.delete(owner);
  };

  // Entries this store's consumer holds (claimed, not yet acknowledged or let go), by entry id, with the consumer's name.
  const held = new Map<string, string>();
  let renewTimer: NodeJS.Timeout | undefined;
  let renewing = false;
  const renew = async (): Promise<void> => {
    if (renewing || held.size === 0) return;
    renewing = true;
    try {
      const byConsumer = new Map<string, string[]>();
      for (const [ref, consumer] of held) byConsumer.set(consumer, [...(byConsumer.get(consumer) ?? []), ref]);
      for (const [consumer, refs] of byConsumer) {
        const lost = (await client.eval(RENEW, 1, stream, GROUP, consumer, ...refs)) as string[];
        for (const ref of lost) held.delete(ref);
      }
    } catch (err) {
      options.onRenewError?.(err);
    } finally {
      renewing = false;
      if (held.size === 0) stopRenewing();
    }
  };
  const stopRenewing = () => {
    clearInterval(renewTimer);
    renewTimer = undefined;
  };
  const hold = (consumer: string, deliveries: Delivery[]): void => {
    for (const d of deliveries) held.set(d.ref, consumer);
    if (held.size > 0 && !renewTimer) {
      renewTimer = setInterval(() => void renew(), Math.max(10, Math.floor(options.claimIdleMs / 3)));
      renewTimer.unref();
    }
  };
  const letGo = (ref: string): void => {
    held.delete(ref);
    if (held.size === 0) stopRenewing();
  };

  const toDeliveries = (entries: StreamEntry[] | null | undefined): Delivery[] => {
    const out: Delivery[] = [];
    for (const entry of entries ?? []) {
      // XAUTOCLAIM lists entries deleted since they were claimed with no fields.
      if (!entry || !entry[1]) continue;
      const at = entry[1].indexOf('j');
      if (at < 0) continue;
      out.push({ item: JSON.parse(entry[1][at + 1]!) as WorkItem, ref: entry[0] });
    }
    return out;
  };

  return {
    kind: 'redis',
    async putBatch(batch) {
      const final = isFinal(batch.status);
      const multi = client.multi().set(batchKey(batch.id), JSON.stringify(batch)).zadd(teamKey(batch.team), batch.created_at, batch.id);
      if (final) multi.srem(activeKey, batch.id);
      else multi.sadd(activeKey, batch.id);
      await multi.exec();
    },
    async getBatch(id) {
      const raw = await client.get(batchKey(id));
      return raw ? (JSON.parse(raw) as BatchRecord) : undefined;
    },
    async updateBatch(id, change) {
      for (;;) {
        const raw = await client.get(batchKey(id));
        if (!raw) return undefined;
        const next = change(JSON.parse(raw) as BatchRecord);
        if (!next) return { batch: JSON.parse(raw) as BatchRecord, changed: false };
        const won = (await client.eval(UPDATE_BATCH, 2, batchKey(id), activeKey, raw, JSON.stringify(next), id, isFinal(next.status) ? '1' : '0')) as number;
        if (won === 1) return { batch: next, changed: true };
      }
    },
    async listBatches(team) {
      const ids = team === undefined ? await client.smembers(activeKey) : await client.zrevrange(teamKey(team), 0, 9_999);
      if (ids.length === 0) return [];
      const raws = await client.mget(ids.map(batchKey));
      const batches = raws.flatMap((raw) => (raw ? [JSON.parse(raw) as BatchRecord] : [])).filter((b) => team === undefined || b.team === team);
      return team === undefined ? batches.sort((a, b) => b.created_at - a.created_at) : batches;
    },
    async enqueue(items) {
      // Pipelined in chunks: one round trip per thousand lines.
      for (let i = 0; i < items.length; i += 1_000) {
        const pipe = client.pipeline();
        for (const item of items.slice(i, i + 1_000)) pipe.xadd(stream, '*', 'j', JSON.stringify(item));
        const replies = await pipe.exec();
        for (const [err] of replies ?? []) if (err) throw err;
      }
    },
    async claim(consumer, max) {
      let out: Delivery[] = [];
      const now = Date.now();
      if (now - lastAutoclaim >= AUTOCLAIM_EVERY_MS) {
        lastAutoclaim = now;
        const reply = (await readGroup(() => client.xautoclaim(stream, GROUP, consumer, options.claimIdleMs, '0-0', 'COUNT', max))) as [string, StreamEntry[], string[]?];
        out = toDeliveries(reply[1]);
      }
      if (out.length < max) {
        const reply = (await readGroup(() => client.xreadgroup('GROUP', GROUP, consumer, 'COUNT', max - out.length, 'STREAMS', stream, '>'))) as Array<[string, StreamEntry[]]> | null;
        out.push(...toDeliveries(reply?.[0]?.[1]));
      }
      hold(consumer, out);
      return out;
    },
    async isDone(item) {
      return (await client.hexists(resultsKey(item.owner), String(item.index))) === 1;
    },
    async complete(delivery, result) {
      const { item } = delivery;
      letGo(delivery.ref);
      const won = (await client.eval(COMPLETE, 3, resultsKey(item.owner), countsKey(item.owner), stream, String(item.index), JSON.stringify(result), OUTCOME_FIELD[result.outcome], GROUP, delivery.ref)) as number;
      return won === 1;
    },
    async drop(delivery) {
      letGo(delivery.ref);
      await client.multi().xack(stream, GROUP, delivery.ref).xdel(stream, delivery.ref).exec();
    },
    async counts(owner) {
      const raw = await client.hgetall(countsKey(owner));
      const c: LineCounts = { completed: Number(raw.completed ?? 0), failed: Number(raw.failed ?? 0), cancelled: Number(raw.cancelled ?? 0) };
      return c;
    },
    async *eachResults(owner) {
      // HSCAN may return a field twice (the hash rehashing meanwhile): each line is yielded once.
      const seen = new Set<number>();
      let cursor = '0';
      do {
        const [next, flat] = await client.hscan(resultsKey(owner), cursor, 'COUNT', RESULTS_CHUNK);
        cursor = next;
        const chunk: LineResult[] = [];
        for (let i = 1; i < flat.length; i += 2) {
          const r = JSON.parse(flat[i]!) as LineResult;
          if (seen.has(r.index)) continue;
          seen.add(r.index);
          chunk.push(r);
        }
        if (chunk.length > 0) yield chunk;
      } while (cursor !== '0');
    },
    async lockFinalize(owner) {
      const token = randomUUID();
      if ((await client.set(lockKey(owner), token, 'PX', options.claimIdleMs, 'NX')) !== 'OK') return false;
      dropFinalizeLock(owner);
      const timer = setInterval(() => {
        client.eval(FINALIZE_LOCK, 1, lockKey(owner), token, String(options.claimIdleMs)).then(
          (held) => {
            // Lost (it ran out while Redis was unreachable): the finalize's compare-and-set on the batch settles who wins.
            if (held !== 1 && finalizing.get(owner)?.token === token) dropFinalizeLock(owner);
          },
          (err: unknown) => options.onRenewError?.(err),
        );
      }, Math.max(10, Math.floor(options.claimIdleMs / 3)));
      timer.unref();
      finalizing.set(owner, { token, timer });
      return true;
    },
    async unlockFinalize(owner) {
      const mine = finalizing.get(owner);
      if (!mine) return;
      dropFinalizeLock(owner);
      await client.eval(FINALIZE_LOCK, 1, lockKey(owner), mine.token, '');
    },
    async activeBatches() {
      return client.smembers(activeKey);
    },
    async stats() {
      const [depth, first] = await Promise.all([client.xlen(stream), client.xrange(stream, '-', '+', 'COUNT', 1)]);
      const id = first[0]?.[0];
      return { depth, oldestAgeMs: id ? Math.max(0, Date.now() - Number(id.split('-')[0])) : 0 };
    },
    release(delivery) {
      letGo(delivery.ref);
    },
    async giveBack(delivery) {
      const consumer = held.get(delivery.ref);
      letGo(delivery.ref);
      if (consumer === undefined) return;
      await client.eval(GIVE_BACK, 1, stream, GROUP, consumer, delivery.ref, options.claimIdleMs);
    },
    async close() {
      held.clear();
      stopRenewing();
      for (const owner of [...finalizing.keys()]) dropFinalizeLock(owner);
    },
  };
}
