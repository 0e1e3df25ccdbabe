// The memory budget store keeps one counter per limit and window: a minute's
// counter is never asked for again once its minute has passed, so the store
// itself must drop it, or a long-running gateway holds every minute (and
// every day) it has ever counted.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { periodId, previousMinuteId, previousMinuteWeight } from '../../src/budget/periods.js';
import { createMemoryBudgetStore, type CounterCheck } from '../../src/budget/store.js';

const MINUTE = 60_000;

function perMinute(key: string, now: number, limit: number): CounterCheck {
  return {
    id: `rate:${key}:${periodId('minute', now, 'UTC')}`,
    previous: { id: `rate:${key}:${previousMinuteId(now)}`, weight: previousMinuteWeight(now) },
    ttlMs: 2 * MINUTE,
    limit: { requests: limit },
    amount: { usd: 0, tokens: 0, requests: 1 },
    commit: true,
  };
}

describe('memory budget store – counters of past windows', () => {
  it('memory budget store – a day of per-minute windows leaves only the live ones', async () => {
    const store = createMemoryBudgetStore();
    await store.seed([]);
    const start = Date.UTC(2026, 0, 1);
    for (let minute = 0; minute < 24 * 60; minute++) {
      const now = start + minute * MINUTE + 5_000;
      for (const key of ['a', 'b']) {
        const result = await store.reserve(`r-${minute}-${key}`, [perMinute(key, now, 1_000)], now + MINUTE, now);
        assert.equal(result.ok, true, `minute ${minute}, key ${key}`);
      }
    }
    // Two keys, each with its current minute and the one before it (still read for the rolling window), at most one more not yet swept.
    assert.ok(store.size() <= 6, `${store.size()} counters held after 1,440 minutes`);
  });

  it('memory budget store – counters opened by refused requests do not pile up', async () => {
    const store = createMemoryBudgetStore();
    await store.seed([]);
    const start = Date.UTC(2026, 0, 2);
    for (let minute = 0; minute < 600; minute++) {
      const now = start + minute * MINUTE + 5_000;
      // A limit of 0 refuses every request: nothing is counted, yet a counter was looked up.
      const result = await store.reserve(`r-${minute}`, [perMinute('refused', now, 0)], now + MINUTE, now);
      assert.equal(result.ok, false);
    }
    assert.ok(store.size() <= 3, `${store.size()} counters held after 600 refused minutes`);
  });

  it('memory budget store – a live window keeps its count across the sweep', async () => {
    const store = createMemoryBudgetStore();
    await store.seed([]);
    const now = Date.UTC(2026, 0, 3) + 10_000;
    assert.equal((await store.reserve('r-1', [perMinute('kept', now, 2)], now + MINUTE, now)).ok, true);
    assert.equal((await store.reserve('r-2', [perMinute('kept', now + 2_000, 2)], now + MINUTE, now + 2_000)).ok, true);
    // Two seconds on, a sweep has run: the third request in the same minute is still the third.
    assert.equal((await store.reserve('r-3', [perMinute('kept', now + 4_000, 2)], now + MINUTE, now + 4_000)).ok, false);
  });
});
