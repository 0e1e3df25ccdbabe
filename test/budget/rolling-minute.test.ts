// The rolling minute behind rate limits and per-minute budgets, on both
// counter stores. Both take the time as an argument, so a minute boundary is
// crossed on purpose here rather than by chance in an end-to-end test.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { createRedisBudgetStore } from '../../src/budget/redis-store.js';
import { rollingAdmission } from '../../src/budget/rolling-admission.js';
import { previousMinuteId, previousMinuteWeight, periodId } from '../../src/budget/periods.js';
import { createMemoryBudgetStore, type BudgetStore, type CounterCheck } from '../../src/budget/store.js';
import { createRedisClient, type RedisStore } from '../../src/stores/redis.js';
import { createLogger } from '../../src/telemetry/logger.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';

const LIMIT = 3;

/** One request against a limit of three requests per rolling minute, at `now`. */
function rateCheck(name: string, now: number): CounterCheck {
  return {
    id: `rate:${name}:${periodId('minute', now, 'UTC')}`,
    previous: { id: `rate:${name}:${previousMinuteId(now)}`, weight: previousMinuteWeight(now) },
    ttlMs: 120_000,
    limit: { requests: LIMIT },
    amount: { usd: 0, tokens: 0, requests: 1 },
    commit: true,
  };
}

async function admit(store: BudgetStore, name: string, now: number): Promise<boolean> {
  const result = await store.reserve(`r-${now}-${Math.random()}`, [rateCheck(name, now)], now + 60_000, now);
  assert.equal(result.ok || !result.reset, true, 'the store is seeded');
  return result.ok;
}

let redis: TestRedis;
let client: RedisStore;
const stores: Array<[string, () => BudgetStore]> = [
  ['memory', () => createMemoryBudgetStore()],
  ['redis', () => createRedisBudgetStore(client)],
];

before(async () => {
  redis = await startRedis();
  const silent = new Writable({ write: (_chunk, _encoding, callback) => callback() });
  client = createRedisClient({ url: redis.url, keyPrefix: 'lgtest', logger: createLogger({ level: 'info', destination: silent }) });
  while (!client.isReady()) await sleep(10);
});

after(async () => {
  await client.close();
  await redis.stop();
});

for (const [kind, create] of stores) {
  describe(`rolling minute (${kind} store)`, () => {
    // The next minute boundary from now: counters live in real time in Redis.
    const boundary = Math.ceil(Date.now() / 60_000) * 60_000 + 60_000;

    it('rate limits – a full limit just before a minute turns still refuses just after it', async () => {
      const store = create();
      await store.seed([]);
      for (let i = 0; i < LIMIT; i++) assert.equal(await admit(store, 'turn', boundary - 30 + i), true, `request ${i + 1}`);
      assert.equal(await admit(store, 'turn', boundary - 1), false, 'the fourth in the same minute');
      assert.equal(await admit(store, 'turn', boundary + 10), false, 'the fourth, 11 ms later in the next minute');
      const refused = await store.reserve('r-detail', [rateCheck('turn', boundary + 10)], boundary + 60_000, boundary + 10);
      const none = { usd: 0, tokens: 0, requests: 0 };
      assert.deepEqual(refused, {
        ok: false,
        reset: false,
        index: 0,
        dimension: 'requests',
        limit: LIMIT,
        used: LIMIT,
        windows: [{ current: none, previous: { ...none, requests: LIMIT } }],
      });
    });

    it('rate limits – the previous minute fades out in proportion to the time passed', async () => {
      const store = create();
      await store.seed([]);
      for (let i = 0; i < LIMIT; i++) assert.equal(await admit(store, 'fade', boundary - 1000 + i), true);
      // 45 s into the next minute, a quarter of the previous one still counts: 0.75 request, rounded up to one.
      const at = boundary + 45_000;
      assert.equal(await admit(store, 'fade', at), true);
      assert.equal(await admit(store, 'fade', at + 1), true);
      assert.equal(await admit(store, 'fade', at + 2), false, 'one carried over and two new fill the limit');
      // Two minutes on, the first minute no longer counts at all.
      for (let i = 0; i < LIMIT; i++) assert.equal(await admit(store, 'fade', boundary + 120_000 + i), true);
    });

    /** Refused at `now`: the instant the window admits is exact, to the millisecond. */
    async function admissionIsExact(store: BudgetStore, check: (now: number) => CounterCheck, now: number): Promise<number> {
      const refused = await store.reserve('probe', [check(now)], now + 600_000, now);
      assert.ok(!refused.ok && !refused.reset, 'refused at first');
      const at = Math.max(...Object.values(rollingAdmission(check(now), refused.windows[0]!, now)));
      assert.ok(at > now && at < now + 120_000, `admits at ${at - now} ms`);
      assert.equal((await store.reserve('probe', [check(at - 1)], at + 600_000, at - 1)).ok, false, 'one millisecond earlier');
      assert.equal((await store.reserve('probe', [check(at)], at + 600_000, at)).ok, true, 'at that instant');
      return at - now;
    }

    it('rate limits – a refused request is admitted exactly when the previous minute has faded enough', async () => {
      const store = create();
      await store.seed([]);
      for (let i = 0; i < LIMIT; i++) assert.equal(await admit(store, 'exact-fade', boundary - 1000 + i), true);
      // 5 s into the next minute three requests still count; two do once a third of the minute has passed.
      assert.equal(await admissionIsExact(store, (t) => rateCheck('exact-fade', t), boundary + 5000), 15_000);
    });

    it('rate limits – a minute filled late is waited out into the next one', async () => {
      const store = create();
      await store.seed([]);
      for (let i = 0; i < LIMIT; i++) assert.equal(await admit(store, 'exact-turn', boundary + 50_000 + i), true);
      assert.equal(await admissionIsExact(store, (t) => rateCheck('exact-turn', t), boundary + 50_010), 9_990 + 20_000);
    });

    it('token limits – in-flight reservations count until they settle, in this minute and the last', async () => {
      const store = create();
      await store.seed([]);
      const tokens = (name: string, amount: number) => (now: number): CounterCheck => ({
        ...rateCheck(name, now),
        limit: { tokens: 1000 },
        amount: { usd: 0, tokens: amount, requests: 0 },
        commit: false,
      });
      // A worst case of 600 still in flight from the previous minute, 300 held in this one.
      assert.equal((await store.reserve('old', [tokens('held', 600)(boundary - 100)], boundary + 600_000, boundary - 100)).ok, true);
      assert.equal((await store.reserve('new', [tokens('held', 300)(boundary + 1000)], boundary + 600_000, boundary + 1000)).ok, true);
      const waited = await admissionIsExact(store, tokens('held', 200), boundary + 2000);
      // 300 + 600 × w + 200 <= 1000 once w <= 5/6: 10 s into the minute.
      assert.equal(waited, 8_000);
      // Settled below the worst case, the window has room at once.
      await store.settle('old', [{ id: tokens('held', 0)(boundary - 100).id, ttlMs: 120_000, actual: { usd: 0, tokens: 50, requests: 0 } }], boundary + 3000);
      assert.equal((await store.reserve('after', [tokens('held', 200)(boundary + 3000)], boundary + 600_000, boundary + 3000)).ok, true);
    });
  });
}
