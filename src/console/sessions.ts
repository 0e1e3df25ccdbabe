// Console sessions: an unguessable id in an HttpOnly cookie names who signed
// in (a person's name and role, never their key) and the session's CSRF
// token. In memory for one instance; in Redis (under a hash of the id, so a
// dump of Redis gives no one a live session) when the gateway has Redis, so
// any replica behind a load balancer serves the same session.
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { Role } from '../auth/people.js';
import { sha256Hex } from '../sha256.js';
import type { RedisStore } from '../stores/redis.js';

export interface Session {
  id: string;
  name: string;
  role: Role;
  /** Sent in every form that changes something, compared on receipt. */
  csrf: string;
  expiresAt: number;
}

export interface SessionStore {
  create(person: { name: string; role: Role }, ttlMs: number): Promise<Session>;
  get(id: string): Promise<Session | undefined>;
  delete(id: string): Promise<void>;
}

const token = () => randomBytes(32).toString('base64url');
const ID = /^[A-Za-z0-9_-]{43}$/;

/** Compares a submitted CSRF token with the session's in constant time. */
export function csrfMatches(session: Session, submitted: unknown): boolean {
  if (typeof submitted !== 'string' || submitted.length !== session.csrf.length) return false;
  return timingSafeEqual(Buffer.from(submitted), Buffer.from(session.csrf));
}

export function createMemorySessions(max = 10_000): SessionStore {
  const sessions = new Map<string, Session>();
  const prune = (now: number) => {
    for (const [id, s] of sessions) if (s.expiresAt <= now) sessions.delete(id);
    // Still full of live sessions: the oldest go first.
    for (const id of sessions.keys()) {
      if (sessions.size < max) break;
      sessions.delete(id);
    }
  };
  return {
    async create(person, ttlMs) {
      const now = Date.now();
      if (sessions.size >= max) prune(now);
      const session: Session = { id: token(), name: person.name, role: person.role, csrf: token(), expiresAt: now + ttlMs };
      sessions.set(session.id, session);
      return session;
    },
    async get(id) {
      if (!ID.test(id)) return undefined;
      const s = sessions.get(id);
      if (!s) return undefined;
      if (s.expiresAt <= Date.now()) {
        sessions.delete(id);
        return undefined;
      }
      return s;
    },
    async delete(id) {
      sessions.delete(id);
    },
  };
}

export function createRedisSessions(redis: RedisStore): SessionStore {
  const key = (id: string) => redis.key('console', 'session', sha256Hex(id));
  return {
    async create(person, ttlMs) {
      const session: Session = { id: token(), name: person.name, role: person.role, csrf: token(), expiresAt: Date.now() + ttlMs };
      const { id: _id, ...stored } = session;
      await redis.client.set(key(session.id), JSON.stringify(stored), 'PX', ttlMs);
      return session;
    },
    async get(id) {
      if (!ID.test(id)) return undefined;
      const text = await redis.client.get(key(id));
      if (!text) return undefined;
      const stored = JSON.parse(text) as Omit<Session, 'id'>;
      return stored.expiresAt > Date.now() ? { id, ...stored } : undefined;
    },
    async delete(id) {
      await redis.client.del(key(id));
    },
  };
}

/**
 * Sign-in attempts per client address, in fixed one-minute windows: a key
 * cannot be guessed through the form faster than this. Per instance, which
 * is enough to make guessing a 128-bit key hopeless either way.
 */
export function createAttemptLimiter(perMinute: () => number, max = 10_000) {
  const windows = new Map<string, { start: number; count: number }>();
  return {
    /** True when this attempt is allowed (and counts it). */
    allow(address: string, now = Date.now()): boolean {
      if (windows.size >= max) for (const [a, w] of windows) if (now - w.start >= 60_000) windows.delete(a);
      let w = windows.get(address);
      if (!w || now - w.start >= 60_000) windows.set(address, (w = { start: now, count: 0 }));
      w.count++;
      return w.count <= perMinute();
    },
  };
}
