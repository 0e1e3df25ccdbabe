// The rolling minute behind rate limits and per-minute budgets, on both
// counter stores. Both take the time as an argument, so a minute boundary is
// crossed on purpose here rather than by chance in an end-to-end test.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { createRedisBudgetStore } from '../../src/budget/redis-store.js';
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
      assert.deepEqual(refused, { ok: false, reset: false, index: 0, dimension: 'requests', limit: LIMIT, used: LIMIT });
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
  });
}
