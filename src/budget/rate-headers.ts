// `x-ratelimit-*` on every answer a rate limit applies to, as OpenAI sends
// them, so clients pace themselves before they meet a 429: the limit, what is
// left of it and when it is whole again, for requests and for tokens. Read
// from the counters the reservation itself returned (no second round trip).
import { formatWait, rollingAdmission, rollingRemaining } from './rolling-admission.js';
import type { CounterCheck, CounterWindow } from './store.js';

const KINDS = ['requests', 'tokens'] as const;

/**
 * Several rate limits may apply (per key, per app, per team): each header
 * speaks for the tightest one in its dimension, the one with the least left.
 * `remaining` counts this request at its worst case (the tokens it may still
 * use) until it settles, as the store does. `reset` is when the rolling
 * minute holds nothing any more, OpenAI's "resets to its initial state".
 */
export function rateLimitHeaders(checks: readonly CounterCheck[], windows: readonly CounterWindow[], now: number): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const kind of KINDS) {
    let tightest: { limit: number; remaining: number; reset: number } | undefined;
    for (const [i, check] of checks.entries()) {
      const limit = check.limit[kind];
      const window = windows[i];
      if (limit === undefined || !window) continue;
      const remaining = rollingRemaining(check, window, now)[kind] ?? 0;
      if (tightest && tightest.remaining <= remaining) continue;
      // When a request needing the whole limit would fit: when nothing counts any more.
      const whole: CounterCheck = { ...check, limit: { [kind]: limit }, amount: { usd: 0, tokens: 0, requests: 0, [kind]: limit } };
      const reset = rollingAdmission(whole, window, now)[kind] ?? now;
      tightest = { limit, remaining, reset };
    }
    if (!tightest) continue;
    headers[`x-ratelimit-limit-${kind}`] = String(tightest.limit);
    headers[`x-ratelimit-remaining-${kind}`] = String(tightest.remaining);
    headers[`x-ratelimit-reset-${kind}`] = formatWait(Math.max(0, tightest.reset - now));
  }
  return headers;
}
