// Counters behind budgets and rate limits, with reserve-then-settle. One
// interface, two implementations with the same semantics: in memory (single
// instance) and Redis (one Lua script per call, so N replicas on one Redis
// never overspend).

/** USD is counted in integer nano-dollars. */
export interface Amount {
  usd: number;
  tokens: number;
  requests: number;
}

export const DIMENSIONS = ['usd', 'tokens', 'requests'] as const;
export type Dimension = (typeof DIMENSIONS)[number];

export interface CounterCheck {
  /** The counter, e.g. `budget:team-daily:team:dev:d:2026-11-24`. */
  id: string;
  /**
   * Rolling minute: the previous minute's counter and the share of it that
   * still counts. That share is rounded up: with whole amounts and limits,
   * `ceil(x) + amount > limit` is exactly `x + amount > limit`, so a request is
   * never admitted because of rounding (three requests just before a minute
   * turns still fill a limit of three just after it). The previous minute's
   * reservations count with it: a request admitted then and still running
   * settles into that minute.
   */
  previous?: { id: string; weight: number };
  /** Dimensions not given are not limited. */
  limit: Partial<Amount>;
  amount: Amount;
  /** Committed at once, with nothing to settle later (otherwise reserved, then settled). */
  commit: boolean;
  /** How long the counter lives after its last change. */
  ttlMs: number;
  /**
   * A day or month budget: the counter must hold the ledger's spend, so a store
   * that lost its data (not seeded) refuses the reserve (`reset`) until it is
   * rebuilt. Minute counters (rate limits, per-minute budgets) are not rebuilt
   * from the ledger: starting one again from zero lets through at most one
   * minute's worth, so they never wait for a rebuild.
   */
  fromLedger?: boolean;
}

/** What a counter and its previous minute hold (spent plus reserved), as a reserve saw them. */
export interface CounterWindow {
  current: Amount;
  previous: Amount;
}

export type ReserveResult =
  /**
   * `windows`: every check's counters after this reservation (this request
   * included), read in the same call, so the answer's `x-ratelimit-remaining-*`
   * needs no second round trip.
   */
  | { ok: true; windows: CounterWindow[] }
  /** `windows`: every check's counters, so the caller can tell when the request would fit. */
  | { ok: false; reset: false; index: number; dimension: Dimension; limit: number; used: number; windows: CounterWindow[] }
  /** The store lost its data (Redis restarted without persistence): rebuild first. */
  | { ok: false; reset: true };

export interface SeedOptions {
  /** What the completeness marker says (a shared store: which epoch, who seeded it, from what). */
  marker?: string;
  /** Also clears the record of a data loss: the seed holds every replica's spend. */
  clearLoss?: boolean;
}

export interface CounterState {
  spent: Amount;
  reserved: Amount;
}

export interface BudgetStore {
  /**
   * Checks every counter and, only if all have room, reserves the amounts
   * under `reservation` (or commits them, for rate limits). Calling it again
   * with the same reservation adds to it: that is how streams extend.
   */
  reserve(reservation: string, checks: readonly CounterCheck[], expiresAt: number, now: number): Promise<ReserveResult>;
  /** Releases the reservation on every counter and adds what was actually spent there. */
  settle(reservation: string, counters: readonly SettleCounter[], now: number): Promise<void>;
  read(ids: readonly string[], now: number): Promise<CounterState[]>;
  /** Rebuilds counters from the ledger and marks the store as complete. */
  seed(values: ReadonlyArray<{ id: string; spent: Amount; ttlMs: number }>, options?: SeedOptions): Promise<void>;
  /** Whether this store holds the ledger's spend (false after a data loss, until seeded). */
  seeded(): Promise<boolean>;
}

export interface SettleCounter {
  id: string;
  ttlMs: number;
  /** What the request actually spent, as this counter counts it. */
  actual: Amount;
}

const ZERO = (): Amount => ({ usd: 0, tokens: 0, requests: 0 });

interface MemoryCounter {
  spent: Amount;
  reserved: Amount;
  reservations: Map<string, { amount: Amount; expiresAt: number }>;
  expiresAt: number;
  /** When expired reservations were last swept out (at most once a second: a sweep walks them all). */
  sweptAt: number;
}

const SWEEP_MS = 1000;

function sum(c: MemoryCounter): Amount {
  return { usd: c.spent.usd + c.reserved.usd, tokens: c.spent.tokens + c.reserved.tokens, requests: c.spent.requests + c.reserved.requests };
}

/** The memory store, with what a test can observe of its size. */
export interface MemoryBudgetStore extends BudgetStore {
  /** Counters held in memory (expired ones go within a second of the next use). */
  size(): number;
}

function isEmpty(c: MemoryCounter): boolean {
  return c.reservations.size === 0 && DIMENSIONS.every((d) => c.spent[d] === 0 && c.reserved[d] === 0);
}

export function createMemoryBudgetStore(): MemoryBudgetStore {
  const counters = new Map<string, MemoryCounter>();
  let isSeeded = false;
  let prunedAt = 0;

  // Counter ids carry their window (`...:<minute>`, `...:<day>`): a past
  // window's id is never asked for again, so its counter is only ever
  // dropped here. At most once a second, whatever has expired goes, and so
  // does a counter that never held anything (one created for a refused
  // request keeps no expiry): reading it or a missing one gives the same zero.
  const prune = (now: number): void => {
    if (now - prunedAt < SWEEP_MS) return;
    prunedAt = now;
    for (const [id, c] of counters) if (c.expiresAt <= now || (c.expiresAt === Infinity && isEmpty(c))) counters.delete(id);
  };

  const counter = (id: string, now: number): MemoryCounter => {
    let c = counters.get(id);
    if (c && c.expiresAt <= now) {
      counters.delete(id);
      c = undefined;
    }
    if (!c) {
      c = { spent: ZERO(), reserved: ZERO(), reservations: new Map(), expiresAt: Infinity, sweptAt: now };
      counters.set(id, c);
    }
    if (now - c.sweptAt < SWEEP_MS) return c;
    c.sweptAt = now;
    for (const [rid, r] of c.reservations) {
      if (r.expiresAt > now) continue;
      for (const d of DIMENSIONS) c.reserved[d] -= r.amount[d];
      c.reservations.delete(rid);
    }
    return c;
  };

  // A previous minute is only read: a missing one is not created.
  const peek = (id: string, now: number): MemoryCounter | undefined => {
    const c = counters.get(id);
    return c && c.expiresAt > now ? counter(id, now) : undefined;
  };

  return {
    size: () => counters.size,
    async reserve(reservation, checks, expiresAt, now) {
      if (!isSeeded && checks.some((c) => c.fromLedger)) return { ok: false, reset: true };
      prune(now);
      const states = checks.map((check) => counter(check.id, now));
      let refused: Extract<ReserveResult, { ok: false; reset: false }> | undefined;
      for (const [index, check] of checks.entries()) {
        const c = states[index]!;
        const prev = check.previous ? peek(check.previous.id, now) : undefined;
        for (const d of DIMENSIONS) {
          const limit = check.limit[d];
          if (limit === undefined || check.amount[d] === 0) continue;
          const carried = prev ? Math.ceil((prev.spent[d] + prev.reserved[d]) * check.previous!.weight) : 0;
          const used = c.spent[d] + c.reserved[d] + carried;
          if (used + check.amount[d] > limit) {
            refused = { ok: false, reset: false, index, dimension: d, limit, used, windows: [] };
            break;
          }
        }
        if (refused) break;
      }
      if (refused) {
        for (const [index, check] of checks.entries()) {
          const c = states[index]!;
          const prev = check.previous ? peek(check.previous.id, now) : undefined;
          refused.windows.push({ current: sum(c), previous: prev ? sum(prev) : ZERO() });
        }
        return refused;
      }
      for (const [index, check] of checks.entries()) {
        const c = states[index]!;
        c.expiresAt = now + check.ttlMs;
        if (check.commit) {
          for (const d of DIMENSIONS) c.spent[d] += check.amount[d];
          continue;
        }
        let r = c.reservations.get(reservation);
        if (!r) c.reservations.set(reservation, (r = { amount: ZERO(), expiresAt }));
        r.expiresAt = expiresAt;
        for (const d of DIMENSIONS) {
          r.amount[d] += check.amount[d];
          c.reserved[d] += check.amount[d];
        }
      }
      const windows = checks.map((check, index) => {
        const prev = check.previous ? peek(check.previous.id, now) : undefined;
        return { current: sum(states[index]!), previous: prev ? sum(prev) : ZERO() };
      });
      return { ok: true, windows };
    },
    async settle(reservation, settled, now) {
      for (const { id, ttlMs, actual } of settled) {
        const c = counter(id, now);
        const r = c.reservations.get(reservation);
        if (r) {
          for (const d of DIMENSIONS) c.reserved[d] -= r.amount[d];
          c.reservations.delete(reservation);
        }
        for (const d of DIMENSIONS) c.spent[d] += actual[d];
        c.expiresAt = now + ttlMs;
      }
    },
    async read(ids, now) {
      // Reading creates nothing: a report must not leave counters behind that never expire.
      return ids.map((id) => {
        const c = peek(id, now);
        return c ? { spent: { ...c.spent }, reserved: { ...c.reserved } } : { spent: ZERO(), reserved: ZERO() };
      });
    },
    async seed(values) {
      const now = Date.now();
      for (const v of values) {
        const c = counter(v.id, now);
        c.spent = { ...v.spent };
        c.expiresAt = now + v.ttlMs;
      }
      isSeeded = true;
    },
    async seeded() {
      return isSeeded;
    },
  };
}
