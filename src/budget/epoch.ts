// Budget epochs: how gateways sharing one Redis tell "the counters were never
// set up" from "Redis lost them", and why they then refuse budgeted requests
// rather than start again from a partial sum.
//
// Every replica writes its own audit trail (its own folder; with the Redis
// sink, streams that vanish with the counters), so no replica can rebuild
// every replica's spend on its own. The `seeded` marker therefore names an
// epoch: a random id written when the counters were set up, by the first
// gateway of a new deployment or by an operator's `lanegate budgets rebuild`
// over every replica's ledger. Each replica remembers the epoch it has seen,
// in memory and in a small file beside its audit trail, so a restart
// remembers too. A replica that knew an epoch and finds no marker, or finds a
// marker of another epoch that a gateway (not an operator) wrote, knows the
// counters were lost. It records the loss in Redis (`lost`), and from then on
// every replica, new ones included, refuses budgeted requests with 503
// budget_unavailable until an operator's rebuild writes a new epoch and
// clears the loss in the same transaction.
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { hostname, userInfo } from 'node:os';
import path from 'node:path';
import { GatewayError } from '../errors.js';
import type { RedisStore } from '../stores/redis.js';
import type { Logger } from '../telemetry/logger.js';
import type { Metrics } from '../telemetry/metrics.js';
import { budgetStateKeys } from './redis-store.js';

/**
 * With the Redis audit sink: since when the streams hold every record (0: since
 * the deployment began). Kept under audit:, without a TTL, beside the streams
 * it speaks for, and lost with them.
 */
export function ledgerSinceKey(redis: RedisStore): string {
  return redis.key('audit', 'ledger-since');
}

export interface EpochMarker {
  epoch: string;
  /** `start`: the first gateway of a new deployment, from its own ledger; `rebuild`: an operator, over every replica's ledger. */
  by: 'start' | 'rebuild';
  at: string;
  /** The ledgers the counters were summed from. */
  sources?: string[];
  /** Who ran the rebuild (user@host). */
  operator?: string;
  /** Set when the operator accepted counters without some replica's spend, and why. */
  waived?: string;
}

export function newMarker(by: EpochMarker['by'], extra: Pick<EpochMarker, 'sources' | 'waived'> = {}): EpochMarker {
  const marker: EpochMarker = { epoch: randomBytes(8).toString('hex'), by, at: new Date().toISOString(), ...extra };
  if (by === 'rebuild') marker.operator = `${safeUser()}@${hostname()}`;
  return marker;
}

function safeUser(): string {
  try {
    return userInfo().username;
  } catch {
    return 'unknown';
  }
}

export function parseMarker(raw: string | null): EpochMarker | undefined {
  if (raw === null) return undefined;
  try {
    const m = JSON.parse(raw) as Partial<EpochMarker> | null;
    if (m && typeof m === 'object' && typeof m.epoch === 'string') {
      return { ...m, epoch: m.epoch, by: m.by === 'rebuild' ? 'rebuild' : 'start', at: String(m.at ?? '') };
    }
  } catch {
    // not JSON: an older gateway's marker
  }
  // Markers written before epochs hold the time they were written.
  return { epoch: `legacy:${raw}`, by: 'start', at: '' };
}

// Records the loss only if the marker is still what this replica read, so a
// stale reading never undoes an operator's rebuild that landed in between.
// KEYS: seeded, lost. ARGV: the marker as read ('' for none), the loss record.
const MARK_LOST = `
if (redis.call('GET', KEYS[1]) or '') ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[2], ARGV[2], 'NX')
redis.call('DEL', KEYS[1])
return 1
`;

export type EpochState = 'ok' | 'lost' | 'new';

export interface EpochGuard {
  /** Reads the store's state and acts on it: adopts a new epoch, records a loss, reports one. */
  check(): Promise<EpochState>;
  /** This replica seeded, or joined, the marker's epoch. */
  adopt(marker: EpochMarker): Promise<void>;
  refusal(): GatewayError;
  close(): void;
}

export interface EpochGuardOptions {
  redis: RedisStore;
  logger: Logger;
  metrics?: Pick<Metrics, 'budgetCountersLost'>;
  /** Where this replica remembers its epoch across restarts (beside its audit trail). */
  stateFile: string;
  /** How often the marker is read without traffic (a loss is then logged even on an idle replica). */
  intervalMs?: number;
}

// Requests refused during a loss each ask for the state: one read serves a burst.
const REUSE_MS = 500;
const LOST_LOG_INTERVAL_MS = 60_000;

export function createEpochGuard(o: EpochGuardOptions): EpochGuard {
  const client = o.redis.client;
  const keys = budgetStateKeys(o.redis);
  const command = 'lanegate_budget_mark_lost';
  client.defineCommand(command, { numberOfKeys: 2, lua: MARK_LOST });
  const markLost = client as unknown as Record<string, (...args: string[]) => Promise<number>>;

  let known: string | undefined;
  const loaded = readFile(o.stateFile, 'utf8')
    .then((text) => {
      const saved = (JSON.parse(text) as { epoch?: unknown }).epoch;
      if (typeof saved === 'string') known ??= saved;
    })
    .catch(() => {});
  let lostSince: number | undefined;
  let lastLostLog = Number.NEGATIVE_INFINITY;
  let last: { state: EpochState; at: number } | undefined;
  let reading: Promise<EpochState> | undefined;

  const lost = (record: string | null): EpochState => {
    o.metrics?.budgetCountersLost.set(1);
    const now = Date.now();
    lostSince ??= now;
    if (now - lastLostLog >= LOST_LOG_INTERVAL_MS) {
      lastLostLog = now;
      o.logger.error(
        { loss: parseRecord(record), knownEpoch: known, lostForMs: now - lostSince },
        "budget counters lost: the budget store (Redis) no longer holds every replica's spend, so budgeted requests are refused with 503 budget_unavailable until an operator runs `lanegate budgets rebuild` over every replica's ledger (README: Budgets, \"Spend survives Redis\")",
      );
    }
    return 'lost';
  };
  const ok = (marker: EpochMarker): EpochState => {
    o.metrics?.budgetCountersLost.set(0);
    if (lostSince !== undefined) {
      o.logger.warn({ epoch: marker.epoch, by: marker.by, sources: marker.sources, operator: marker.operator, waived: marker.waived, lostForMs: Date.now() - lostSince }, 'budget counters restored: budgeted requests are admitted again');
    }
    lostSince = undefined;
    lastLostLog = Number.NEGATIVE_INFINITY;
    return 'ok';
  };

  async function adopt(marker: EpochMarker): Promise<void> {
    last = undefined;
    if (known === marker.epoch) return;
    known = marker.epoch;
    if (marker.by === 'rebuild') o.logger.warn({ epoch: marker.epoch, sources: marker.sources, operator: marker.operator, waived: marker.waived }, 'budget counters were rebuilt by an operator: joined the new epoch');
    try {
      await mkdir(path.dirname(o.stateFile), { recursive: true });
      const tmp = `${o.stateFile}.${process.pid}.tmp`;
      await writeFile(tmp, JSON.stringify({ epoch: marker.epoch, at: new Date().toISOString() }) + '\n');
      await rename(tmp, o.stateFile);
    } catch (err) {
      o.logger.warn({ err, file: o.stateFile }, 'could not save the budget epoch: after a restart this gateway could not tell a Redis that lost its data from a new one');
    }
  }

  async function read(): Promise<EpochState> {
    await loaded;
    const [seeded = null, loss = null] = await client.mget(keys.seeded, keys.lost);
    const marker = parseMarker(seeded);
    if (loss !== null) {
      // A gateway set the counters up while the loss was being recorded: its seed is as partial as any.
      if (seeded !== null && marker?.by === 'start') await markLost[command]!(seeded, loss);
      return lost(loss);
    }
    if (!marker) {
      if (known === undefined) return 'new';
      await markLost[command]!('', JSON.stringify({ at: new Date().toISOString(), epoch: known, reason: 'the budget marker is gone (Redis restarted without persistence, was flushed or evicted keys)' }));
      return lost(await client.get(keys.lost));
    }
    if (marker.epoch === known) return ok(marker);
    if (marker.by === 'rebuild' || known === undefined) {
      await adopt(marker);
      return ok(marker);
    }
    // Another gateway set up a fresh epoch from its own ledger after the one this replica knew was lost.
    await markLost[command]!(seeded ?? '', JSON.stringify({ at: new Date().toISOString(), epoch: known, reason: `epoch ${known} was replaced by ${marker.epoch}, set up by a gateway from its own ledger only` }));
    return lost(await client.get(keys.lost));
  }

  async function check(): Promise<EpochState> {
    // Only a loss is reused: a caller asks because the marker just went missing, which an older 'ok' cannot answer.
    if (last?.state === 'lost' && Date.now() - last.at < REUSE_MS) return last.state;
    reading ??= read()
      .then((state) => {
        last = { state, at: Date.now() };
        return state;
      })
      .finally(() => {
        reading = undefined;
      });
    return reading;
  }

  const timer = setInterval(() => void check().catch(() => {}), o.intervalMs ?? 5_000);
  timer.unref();
  void check().catch(() => {});

  return {
    check,
    adopt,
    refusal: () =>
      new GatewayError('budget_unavailable', "Budgets cannot be checked right now: the budget store lost its counters, and budgeted requests wait until every replica's spend is restored. Nothing was sent upstream; retry later.", {
        retryAfter: 30,
      }),
    close: () => clearInterval(timer),
  };
}

function parseRecord(record: string | null): unknown {
  if (record === null) return undefined;
  try {
    return JSON.parse(record);
  } catch {
    return record;
  }
}
