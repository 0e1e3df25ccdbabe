// Budget counters in Redis. Every reserve is one Lua script: it releases
// expired reservations, checks every counter and only then reserves on all of
// them, atomically, so replicas racing for the last dollar cannot overspend.
// A counter is a hash: spent (u, t, r) and reserved (ru, rt, rr) in nano-USD,
// tokens and requests; its reservations live in `<id>:res` (amounts) and
// `<id>:exp` (expiry times).
import type { RedisStore } from '../stores/redis.js';
import { DIMENSIONS, type Amount, type BudgetStore, type CounterCheck, type Dimension, type ReserveResult } from './store.js';

const RELEASE_EXPIRED = `
local function release_expired(id, now)
  local expired = redis.call('ZRANGEBYSCORE', id .. ':exp', '-inf', now)
  for _, rid in ipairs(expired) do
    for _, d in ipairs({'u', 't', 'r'}) do
      local amount = tonumber(redis.call('HGET', id .. ':res', rid .. ':' .. d) or '0')
      if amount ~= 0 then redis.call('HINCRBY', id, 'r' .. d, -amount) end
      redis.call('HDEL', id .. ':res', rid .. ':' .. d)
    end
    redis.call('ZREM', id .. ':exp', rid)
  end
end
`;

// KEYS[1] = seed marker; then per check: counter, previous minute (or the counter again).
// ARGV: now, reservation, expiresAt, n, whether a missing seed marker refuses
// (1: a check is kept from the ledger), then per check 9 values:
//   limit u, t, r (-1: none), amount u, t, r, previous weight (0..1), ttlMs, commit (0/1)
// Refused: {0, check, dimension, limit, used, then per check the counter's and
// the previous minute's spent plus reserved: u, t, r, u, t, r}. Reserved: {1,
// then the same six per check, after the reservation}.
const RESERVE = `${RELEASE_EXPIRED}
if ARGV[5] == '1' and redis.call('EXISTS', KEYS[1]) == 0 then return {-1} end
local now = tonumber(ARGV[1])
local rid = ARGV[2]
local expires = tonumber(ARGV[3])
local n = tonumber(ARGV[4])
local dims = {'u', 't', 'r'}
local function held(id, d)
  return tonumber(redis.call('HGET', id, d) or '0') + tonumber(redis.call('HGET', id, 'r' .. d) or '0')
end
local refused = nil
for i = 1, n do
  local id = KEYS[2 * i]
  release_expired(id, now)
  local prev = KEYS[2 * i + 1]
  if prev ~= id then release_expired(prev, now) end
  local base = 5 + (i - 1) * 9
  local weight = tonumber(ARGV[base + 7])
  for j, d in ipairs(dims) do
    local limit = tonumber(ARGV[base + j])
    local amount = tonumber(ARGV[base + 3 + j])
    if limit >= 0 and amount > 0 then
      local used = held(id, d)
      if weight > 0 and prev ~= id then used = used + math.ceil(held(prev, d) * weight) end
      if used + amount > limit then
        refused = {0, i, j, limit, used}
        break
      end
    end
  end
  if refused then break end
end
if refused then
  for i = 1, n do
    local id = KEYS[2 * i]
    local prev = KEYS[2 * i + 1]
    for _, d in ipairs(dims) do table.insert(refused, held(id, d)) end
    for _, d in ipairs(dims) do table.insert(refused, prev ~= id and held(prev, d) or 0) end
  end
  return refused
end
for i = 1, n do
  local id = KEYS[2 * i]
  local base = 5 + (i - 1) * 9
  local ttl = tonumber(ARGV[base + 8])
  local commit = ARGV[base + 9] == '1'
  for j, d in ipairs(dims) do
    local amount = tonumber(ARGV[base + 3 + j])
    if amount ~= 0 then
      if commit then
        redis.call('HINCRBY', id, d, amount)
      else
        redis.call('HINCRBY', id, 'r' .. d, amount)
        redis.call('HINCRBY', id .. ':res', rid .. ':' .. d, amount)
      end
    end
  end
  if not commit then
    redis.call('ZADD', id .. ':exp', expires, rid)
    redis.call('PEXPIRE', id .. ':res', ttl)
    redis.call('PEXPIRE', id .. ':exp', ttl)
  end
  redis.call('HSETNX', id, 'u', 0)
  redis.call('PEXPIRE', id, ttl)
end
local ok = {1}
for i = 1, n do
  local id = KEYS[2 * i]
  local prev = KEYS[2 * i + 1]
  for _, d in ipairs(dims) do table.insert(ok, held(id, d)) end
  for _, d in ipairs(dims) do table.insert(ok, prev ~= id and held(prev, d) or 0) end
end
return ok
`;

// KEYS: counters. ARGV: now, reservation, then per counter: actual u, t, r and ttlMs.
const SETTLE = `${RELEASE_EXPIRED}
local now = tonumber(ARGV[1])
local rid = ARGV[2]
local dims = {'u', 't', 'r'}
for i, id in ipairs(KEYS) do
  release_expired(id, now)
  local base = 2 + (i - 1) * 4
  for j, d in ipairs(dims) do
    local held = tonumber(redis.call('HGET', id .. ':res', rid .. ':' .. d) or '0')
    if held ~= 0 then redis.call('HINCRBY', id, 'r' .. d, -held) end
    redis.call('HDEL', id .. ':res', rid .. ':' .. d)
    local actual = tonumber(ARGV[base + j])
    if actual ~= 0 then redis.call('HINCRBY', id, d, actual) end
  end
  redis.call('ZREM', id .. ':exp', rid)
  redis.call('HSETNX', id, 'u', 0)
  redis.call('PEXPIRE', id, tonumber(ARGV[base + 4]))
end
return 1
`;

const FIELDS: Record<Dimension, string> = { usd: 'u', tokens: 't', requests: 'r' };

/**
 * The store's two state keys: `seeded` (the counters hold the ledger's spend;
 * its value says which epoch, see epoch.ts) and `lost` (a replica saw the
 * counters vanish: budgeted requests wait for an operator's rebuild).
 */
export function budgetStateKeys(store: RedisStore): { seeded: string; lost: string } {
  return { seeded: store.key('budget', 'seeded'), lost: store.key('budget', 'lost') };
}

export function createRedisBudgetStore(store: RedisStore): BudgetStore {
  const client = store.client;
  const key = (id: string) => store.key('budget', id);
  const { seeded: seedKey, lost: lostKey } = budgetStateKeys(store);
  const reserveScript = 'lanegate_budget_reserve';
  const settleScript = 'lanegate_budget_settle';
  client.defineCommand(reserveScript, { lua: RESERVE });
  client.defineCommand(settleScript, { lua: SETTLE });
  type Scripted = { [k: string]: (...args: Array<string | number>) => Promise<unknown> };
  const scripts = client as unknown as Scripted;

  return {
    async reserve(reservation, checks: readonly CounterCheck[], expiresAt, now): Promise<ReserveResult> {
      const keys: string[] = [seedKey];
      const args: Array<string | number> = [now, reservation, expiresAt, checks.length, checks.some((c) => c.fromLedger) ? 1 : 0];
      for (const c of checks) {
        keys.push(key(c.id), c.previous ? key(c.previous.id) : key(c.id));
        for (const d of DIMENSIONS) args.push(c.limit[d] ?? -1);
        for (const d of DIMENSIONS) args.push(c.amount[d]);
        args.push(c.previous?.weight ?? 0, c.ttlMs, c.commit ? 1 : 0);
      }
      const result = (await scripts[reserveScript]!(keys.length, ...keys, ...args)) as number[];
      if (result[0] === -1) return { ok: false, reset: true };
      const amountAt = (at: number): Amount => ({ usd: result[at]!, tokens: result[at + 1]!, requests: result[at + 2]! });
      const windowsFrom = (start: number) => checks.map((_, i) => ({ current: amountAt(start + i * 6), previous: amountAt(start + 3 + i * 6) }));
      if (result[0] === 1) return { ok: true, windows: windowsFrom(1) };
      const windows = windowsFrom(5);
      return { ok: false, reset: false, index: result[1]! - 1, dimension: DIMENSIONS[result[2]! - 1]!, limit: result[3]!, used: result[4]!, windows };
    },
    async settle(reservation, counters, now) {
      if (counters.length === 0) return;
      const args: Array<string | number> = [now, reservation];
      for (const c of counters) args.push(c.actual.usd, c.actual.tokens, c.actual.requests, c.ttlMs);
      await scripts[settleScript]!(counters.length, ...counters.map((c) => key(c.id)), ...args);
    },
    async read(ids, now) {
      void now;
      const pipeline = client.pipeline();
      for (const id of ids) pipeline.hgetall(key(id));
      const results = (await pipeline.exec()) ?? [];
      return results.map(([, value]) => {
        const h = (value ?? {}) as Record<string, string>;
        const get = (f: string) => Number(h[f] ?? 0);
        const amount = (prefix: string): Amount => ({ usd: get(prefix + FIELDS.usd), tokens: get(prefix + FIELDS.tokens), requests: get(prefix + FIELDS.requests) });
        return { spent: amount(''), reserved: amount('r') };
      });
    },
    async seed(values, options = {}) {
      const multi = client.multi();
      for (const v of values) {
        multi.hset(key(v.id), 'u', v.spent.usd, 't', v.spent.tokens, 'r', v.spent.requests);
        multi.pexpire(key(v.id), v.ttlMs);
      }
      multi.set(seedKey, options.marker ?? String(Date.now()));
      if (options.clearLoss) multi.del(lostKey);
      await multi.exec();
    },
    async seeded() {
      return (await client.exists(seedKey)) === 1;
    },
  };
}
