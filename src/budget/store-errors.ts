// A budget or rate-limit store failure that refuses a request (503) or serves
// it on local accounting is logged with its cause, so an operator can tell a
// Redis that times out (overloaded, paused) from one that refuses connections
// (down) or a bug (a script error): at most once per interval per cause, with
// a count of what was not logged. The cause is the error's name, code and
// message, with any credentials in a URL removed; the connection's state and
// its last connection error say what Redis itself was doing.
import type { RedisStore } from '../stores/redis.js';
import type { Logger } from '../telemetry/logger.js';

export type StoreErrorMode = 'fail_closed' | 'fail_open';

export interface StoreErrorLog {
  report(err: unknown, mode: StoreErrorMode): void;
}

interface Cause {
  name: string;
  code?: string;
  message: string;
}

const INTERVAL_MS = 10_000;
// Causes are few (timeout, refused, reset, script error); a bound keeps an odd stream of them from growing the map.
const MAX_CAUSES = 32;

/** `redis://user:password@host` and the like lose their credentials. */
export function withoutCredentials(text: string): string {
  return text.replace(/([a-z][a-z0-9+.-]*:\/\/)[^\s/@]*@/gi, '$1[redacted]@');
}

export function describeCause(err: unknown): Cause {
  if (!(err instanceof Error)) return { name: 'unknown', message: withoutCredentials(String(err)).slice(0, 300) };
  const code = (err as { code?: unknown }).code;
  return { name: err.name, ...(typeof code === 'string' ? { code } : {}), message: withoutCredentials(err.message).slice(0, 300) };
}

export function createStoreErrorLog(o: { logger: Logger; redis?: RedisStore; intervalMs?: number }): StoreErrorLog {
  const interval = o.intervalMs ?? INTERVAL_MS;
  const seen = new Map<string, { at: number; suppressed: number }>();
  // ioredis rejects commands with "Connection is closed" or "Stream isn't writeable" while it
  // reconnects; the reason it cannot connect (refused, timed out, DNS) is on the connection.
  let connectionError: Cause | undefined;
  o.redis?.client.on('error', (err: Error) => (connectionError = describeCause(err)));
  o.redis?.client.on('ready', () => (connectionError = undefined));
  return {
    report(err, mode) {
      const cause = describeCause(err);
      // What Redis is doing is part of the cause: "connection closed" while it refuses connections, then while it is unreachable, is two lines.
      const key = `${mode}\u0000${cause.name}\u0000${cause.code ?? ''}\u0000${cause.message}\u0000${connectionError?.code ?? connectionError?.message ?? ''}`;
      const now = Date.now();
      const entry = seen.get(key);
      if (entry && now - entry.at < interval) {
        entry.suppressed++;
        return;
      }
      if (!entry && seen.size >= MAX_CAUSES) seen.clear();
      seen.set(key, { at: now, suppressed: 0 });
      const redis = o.redis ? { status: o.redis.client.status, ...(connectionError ? { connectionError } : {}) } : undefined;
      const fields = { mode, cause, redis, suppressed: entry?.suppressed ?? 0 };
      if (mode === 'fail_closed') o.logger.error(fields, 'budget store failed: budgeted requests are refused with 503 (on_store_error: fail_closed)');
      else o.logger.warn(fields, 'budget store failed: serving with local accounting (on_store_error: fail_open)');
    },
  };
}
