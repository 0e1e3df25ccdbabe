// When a request the rolling minute refused would be admitted, if nothing else
// arrives meanwhile: what `retry-after` and `x-ratelimit-reset-*` tell a
// client. The store counts a rolling minute as this minute's counter plus the
// previous minute's, weighted by the share of it still inside the window
// (rounded up). So the wait is found by asking that same question, with the
// same arithmetic, of later instants: the answer is exact to the millisecond,
// not an estimate that a client waiting exactly that long could still miss.
import { previousMinuteWeight } from './periods.js';
import { DIMENSIONS, type CounterCheck, type CounterWindow, type Dimension } from './store.js';

const MINUTE = 60_000;

/**
 * The first instant (ms since the epoch) after `now` at which `check` has
 * room for its amount in each limited dimension; Infinity where the amount
 * alone is over the limit. In-flight reservations are counted as if they
 * were spent in full: a client told to wait this long is admitted, though
 * one may get in sooner if those requests settle below their worst case.
 */
export function rollingAdmission(check: CounterCheck, window: CounterWindow, now: number): Partial<Record<Dimension, number>> {
  const out: Partial<Record<Dimension, number>> = {};
  const minuteStart = now - (now % MINUTE);
  for (const d of DIMENSIONS) {
    const limit = check.limit[d];
    const amount = check.amount[d];
    if (limit === undefined || amount === 0) continue;
    if (amount > limit) {
      out[d] = Infinity;
      continue;
    }
    const current = window.current[d];
    const previous = window.previous[d];
    // What the store would count at `t`, had nothing been added since `now`.
    const used = (t: number): number => {
      if (t < minuteStart + MINUTE) return current + Math.ceil(previous * previousMinuteWeight(t));
      if (t < minuteStart + 2 * MINUTE) return Math.ceil(current * previousMinuteWeight(t));
      return 0;
    };
    const fits = (t: number) => used(t) + amount <= limit;
    if (fits(now)) {
      out[d] = now;
      continue;
    }
    // `used` never grows with time: search for the first instant that fits.
    let lo = now; // does not fit
    let hi = minuteStart + 2 * MINUTE; // fits: nothing counts any more
    while (hi - lo > 1) {
      const mid = Math.floor((lo + hi) / 2);
      if (fits(mid)) hi = mid;
      else lo = mid;
    }
    out[d] = hi;
  }
  return out;
}

/**
 * When the rolling minute holds nothing in dimension `d` any more: what
 * rollingAdmission finds for a request that needs the whole limit, without
 * its search. The previous minute's weight never reaches zero inside a
 * minute, so anything in this minute's counter counts until the end of the
 * next one, and anything only in the previous minute's counter until the
 * end of this one. Counters below zero (never written by the stores) get the
 * search.
 */
export function rollingEmptyAt(check: CounterCheck, window: CounterWindow, d: Dimension, now: number): number {
  const current = window.current[d];
  const previous = window.previous[d];
  const limit = check.limit[d];
  if (current < 0 || previous < 0 || !limit) {
    const whole: CounterCheck = { ...check, limit: { [d]: limit }, amount: { usd: 0, tokens: 0, requests: 0, [d]: limit } };
    return rollingAdmission(whole, window, now)[d] ?? now;
  }
  const minuteStart = now - (now % MINUTE);
  if (current > 0) return minuteStart + 2 * MINUTE;
  return Math.ceil(previous * previousMinuteWeight(now)) > 0 ? minuteStart + MINUTE : now;
}

/** What is left in each limited dimension at `now`, as the store counts it. */
export function rollingRemaining(check: CounterCheck, window: CounterWindow, now: number): Partial<Record<Dimension, number>> {
  const out: Partial<Record<Dimension, number>> = {};
  const weight = check.previous ? previousMinuteWeight(now) : 0;
  for (const d of DIMENSIONS) {
    const limit = check.limit[d];
    if (limit === undefined) continue;
    out[d] = Math.max(0, limit - window.current[d] - Math.ceil(window.previous[d] * weight));
  }
  return out;
}

/** A wait as OpenAI writes it in `x-ratelimit-reset-*`: `250ms`, `1.5s`, `1m2.25s`. */
export function formatWait(ms: number): string {
  if (ms < 1000) return `${ms}ms`;
  const minutes = Math.floor(ms / MINUTE);
  const seconds = `${(ms % MINUTE) / 1000}s`;
  return minutes > 0 ? `${minutes}m${seconds}` : seconds;
}
