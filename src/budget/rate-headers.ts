// `x-ratelimit-*` on every answer a rate limit applies to, as OpenAI sends
// them, so clients pace themselves before they meet a 429: the limit, what is
// left of it and when it is whole again, for requests and for tokens. Read
// from the counters the reservation itself returned (no second round trip).
import { formatWait, rollingEmptyAt, rollingRemaining } from './rolling-admission.js';
import type { CounterCheck, CounterWindow } from './store.js';

// The header names, built once.
const KINDS = [
  { kind: 'requests', limit: 'x-ratelimit-limit-requests', remaining: 'x-ratelimit-remaining-requests', reset: 'x-ratelimit-reset-requests' },
  { kind: 'tokens', limit: 'x-ratelimit-limit-tokens', remaining: 'x-ratelimit-remaining-tokens', reset: 'x-ratelimit-reset-tokens' },
] as const;

/**
 * Several rate limits may apply (per key, per app, per team): each header
 * speaks for the tightest one in its dimension, the one with the least left.
 * `remaining` counts this request at its worst case (the tokens it may still
 * use) until it settles, as the store does. `reset` is when the rolling
 * minute holds nothing any more, OpenAI's "resets to its initial state".
 */
export function rateLimitHeaders(checks: readonly CounterCheck[], windows: readonly CounterWindow[], now: number): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const names of KINDS) {
    const kind = names.kind;
    let tightest = -1;
    let limit = 0;
    let remaining = 0;
    for (let i = 0; i < checks.length; i++) {
      const check = checks[i]!;
      const l = check.limit[kind];
      const window = windows[i];
      if (l === undefined || !window) continue;
      const left = rollingRemaining(check, window, now)[kind] ?? 0;
      if (tightest >= 0 && remaining <= left) continue;
      tightest = i;
      limit = l;
      remaining = left;
    }
    if (tightest < 0) continue;
    headers[names.limit] = String(limit);
    headers[names.remaining] = String(remaining);
    headers[names.reset] = formatWait(Math.max(0, rollingEmptyAt(checks[tightest]!, windows[tightest]!, kind, now) - now));
  }
  return headers;
}
