// Moves records from the request path to a sink without ever making a
// request wait for it, and without losing one silently:
//
//   write() ─> bounded memory queue ─> one loop ─┬─> sink (file, Redis)
//                                               └─> spool on local disk while the
//                                                    sink fails, replayed in order
//
// One loop does all the writing, so order needs no locks: while anything is
// spooled, new records are spooled behind it, and the loop replays the oldest
// segment whenever the sink is due for another try (exponential backoff).
// When a record can be kept nowhere (queue, sink and spool all full or
// failing) it is counted in lanegate_audit_dropped_total{reason} and logged,
// and with `on_full: refuse` the gateway answers new requests 503 until
// records can be kept again.
//
// What a request does wait for is its line in the intent log (intents.ts),
// before its answer starts; the writer settles that line once the record is
// in the sink or the spool, so a crash in between is found at the next start.
import type { Logger } from '../../telemetry/logger.js';
import type { IntentLog } from './intents.js';
import type { AuditMetrics } from '../metrics.js';
import { toPending, type PendingRecord } from './pending.js';
import type { AuditQuery } from '../read/query.js';
import type { AuditEntry } from '../schema.js';
import { SpoolFullError, type Spool } from './spool.js';

export interface AuditSink {
  /** False when the trail is off: callers then skip building records at all. */
  readonly enabled: boolean;
  write(entry: AuditEntry): void;
  /**
   * Call before a request's answer starts: resolves once the request is in
   * the intent log (intents.ts), so a crash cannot lose its record unseen.
   * Undefined when there is nothing to wait for (the trail is off).
   */
  promise(id: string, lane: string | undefined): Promise<void> | undefined;
  /** Resolves once every record written so far is in the sink or the spool. */
  flush(): Promise<void>;
  /** Flushes, sends what it can of the spool (up to audit.shutdown_flush_ms), and stops. */
  close(): Promise<void>;
  /** True while `on_full: refuse` applies: new requests must be answered 503. */
  refusing(): boolean;
  /** Reading records back (the admin API); absent when the trail is off. */
  readonly query?: AuditQuery;
}

export interface WriteOutcome {
  /** Records not written, in order (a sink writes what it can and reports the rest). */
  failed: PendingRecord[];
  error?: unknown;
}

export interface AuditBackend {
  readonly kind: 'file' | 'redis';
  write(batch: PendingRecord[]): Promise<WriteOutcome>;
  /** Cheap check that a write would likely succeed now (Redis connected, disk not full). */
  ready(): Promise<boolean>;
  /** Makes what was written durable (fsync). */
  sync(): Promise<void>;
  close(): Promise<void>;
}

export interface WriterOptions {
  backend: AuditBackend;
  spool: Spool | undefined;
  queueSize: number;
  batchSize: number;
  onFull: 'serve' | 'refuse';
  shutdownFlushMs: number;
  metrics: AuditMetrics;
  logger: Logger;
  query?: AuditQuery;
  /** Answers promised before their records exist; settled as records reach the sink or the spool. */
  intents?: IntentLog;
}

const BACKOFF_MIN_MS = 250;
const BACKOFF_MAX_MS = 5_000;
const LOSS_LOG_INTERVAL_MS = 10_000;
const BATCH_LINGER_MS = 25;

export function createAuditWriter(o: WriterOptions): AuditSink {
  const { backend, spool, metrics, logger, intents } = o;
  const sinkLabel = backend.kind;
  // Records are serialized as they are written: the queue then holds one
  // string per record, not the object graph of a finished request.
  let queue: PendingRecord[] = [];
  let accepted = 0;
  let settled = 0;
  let healthy = true;
  let retryAt = 0;
  let backoff = BACKOFF_MIN_MS;
  /** Records could not be kept: the refuse policy applies until a probe says otherwise. */
  let blocked = false;
  let closing = false;
  let closed = false;
  let closeDeadline = 0;
  let wake: (() => void) | undefined;
  let waiters: Array<{ until: number; resolve: () => void }> = [];
  let lost = 0;
  let lastLossLog = 0;
  let lossSinceLog = 0;

  metrics.sinkUp.labels(sinkLabel).set(1);
  metrics.written.labels(sinkLabel).inc(0);
  updateSpoolGauges();

  /** These records are in the sink or the spool, or their loss was counted: their answers' promises are kept. */
  function settle(items: readonly PendingRecord[]): void {
    if (!intents) return;
    for (const item of items) if (item.facets.kind === 'request') intents.settle(item.facets.id);
  }

  function updateSpoolGauges(): void {
    metrics.spoolBytes.set(spool?.bytes() ?? 0);
    metrics.spoolRecords.set(spool?.records() ?? 0);
  }

  function setBlocked(value: boolean): void {
    blocked = value;
    metrics.refusing.set(o.onFull === 'refuse' && value ? 1 : 0);
  }

  function drop(count: number, reason: string, err?: unknown): void {
    if (count <= 0) return;
    metrics.dropped.labels(reason).inc(count);
    lost += count;
    lossSinceLog += count;
    settled += count;
    const now = Date.now();
    if (now - lastLossLog >= LOSS_LOG_INTERVAL_MS) {
      lastLossLog = now;
      const code = (err as NodeJS.ErrnoException | undefined)?.code;
      logger.error(
        { reason, lost: lossSinceLog, lostTotal: lost, code, err: err instanceof Error ? err.message : err, policy: o.onFull },
        o.onFull === 'refuse'
          ? `AUDIT RECORDS LOST (${reason}${code === 'ENOSPC' ? ': disk full' : ''}): new requests are refused until records can be kept again (audit.on_full: refuse)`
          : `AUDIT RECORDS LOST (${reason}${code === 'ENOSPC' ? ': disk full' : ''}): the gateway keeps serving (audit.on_full: serve); see lanegate_audit_dropped_total`,
      );
      lossSinceLog = 0;
    }
  }

  /** A record lost before it was queued is counted and logged at once: that settles its answer's promise. */
  function dropEntry(entry: AuditEntry, reason: string, err?: unknown): void {
    if (entry.kind === 'request') intents?.settle(entry.id);
    drop(1, reason, err);
  }

  function markUnhealthy(err: unknown): void {
    if (healthy) {
      const code = (err as NodeJS.ErrnoException | undefined)?.code;
      logger.error(
        { sink: sinkLabel, code, err: err instanceof Error ? err.message : String(err), spool: spool?.dir },
        spool ? `audit sink failing${code === 'ENOSPC' ? ' (disk full)' : ''}: records go to the local spool and are sent in order once it recovers` : 'audit sink failing and spooling is off (audit.spool.max_bytes: 0)',
      );
    }
    healthy = false;
    metrics.sinkUp.labels(sinkLabel).set(0);
    retryAt = Date.now() + backoff;
    backoff = Math.min(backoff * 2, BACKOFF_MAX_MS);
    if (!spool) setBlocked(true);
  }

  function markHealthy(): void {
    if (!healthy) logger.info({ sink: sinkLabel, spooled: spool?.records() ?? 0 }, 'audit sink recovered');
    healthy = true;
    metrics.sinkUp.labels(sinkLabel).set(1);
    backoff = BACKOFF_MIN_MS;
    retryAt = 0;
    if (!spool) setBlocked(false);
  }

  async function toSpool(items: PendingRecord[]): Promise<void> {
    if (!spool) {
      settle(items);
      return drop(items.length, 'sink_error');
    }
    try {
      await spool.append(items);
      settled += items.length;
      if (blocked) setBlocked(false);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      drop(items.length, err instanceof SpoolFullError ? 'spool_full' : code === 'ENOSPC' ? 'disk_full' : 'spool_error', err);
      setBlocked(true);
    } finally {
      // In the spool (on disk), or counted as lost: either way after the append, never before.
      settle(items);
      updateSpoolGauges();
    }
  }

  async function deliver(items: PendingRecord[]): Promise<void> {
    if (spool && (!spool.isEmpty() || !healthy)) return toSpool(items);
    if (!spool && !healthy && Date.now() < retryAt) {
      settle(items);
      return drop(items.length, 'sink_error');
    }
    const out = await safeWrite(items);
    const done = items.length - out.failed.length;
    settled += done;
    if (intents) settle(out.failed.length === 0 ? items : items.filter((i) => !out.failed.includes(i)));
    metrics.written.labels(sinkLabel).inc(done);
    if (out.failed.length === 0) return markHealthy();
    markUnhealthy(out.error);
    await toSpool(out.failed);
  }

  async function safeWrite(items: PendingRecord[]): Promise<WriteOutcome> {
    try {
      return await backend.write(items);
    } catch (error) {
      return { failed: items, error };
    }
  }

  async function replayOne(): Promise<void> {
    const segment = await spool!.oldest().catch((err: unknown) => {
      logger.error({ err: String(err), spool: spool!.dir }, 'cannot read the audit spool; retrying');
      return undefined;
    });
    if (!segment) {
      markUnhealthy(new Error('spool unreadable'));
      return;
    }
    if (segment.items.length > 0) {
      const out = await safeWrite(segment.items);
      const done = segment.items.length - out.failed.length;
      metrics.written.labels(sinkLabel).inc(done);
      if (out.failed.length > 0) {
        if (done > 0) await spool!.replace(segment.id, out.failed).catch(() => {});
        markUnhealthy(out.error);
        updateSpoolGauges();
        return;
      }
    }
    await spool!.remove(segment.id).catch(() => {});
    // An empty segment (its lines torn by a crash) says nothing about the sink.
    if (segment.items.length > 0) markHealthy();
    if (blocked) setBlocked(false);
    updateSpoolGauges();
  }

  function notify(): void {
    if (waiters.length === 0) return;
    const still: typeof waiters = [];
    for (const w of waiters) (settled >= w.until ? w.resolve : () => still.push(w))();
    waiters = still;
  }

  let loop: Promise<void> | undefined;
  function kick(): void {
    if (wake) {
      const w = wake;
      wake = undefined;
      w();
    }
    loop ??= run().finally(() => {
      loop = undefined;
    });
  }

  async function run(): Promise<void> {
    for (;;) {
      if (queue.length > 0) {
        // A short wait lets the requests finishing meanwhile join this batch:
        // one write and one fstat then serve many records.
        if (queue.length < o.batchSize) await new Promise<void>((resolve) => setTimeout(resolve, BATCH_LINGER_MS));
        const items = queue.length <= o.batchSize ? queue : queue.slice(0, o.batchSize);
        queue = queue.length <= o.batchSize ? [] : queue.slice(o.batchSize);
        metrics.queueDepth.set(queue.length);
        await deliver(items);
        notify();
      }
      const now = Date.now();
      if (spool && !spool.isEmpty() && now >= retryAt) {
        await replayOne();
        continue;
      }
      if (blocked && now >= retryAt) {
        // Nothing arrives while requests are refused: probe instead.
        const room = spool ? await spool.hasRoom() : await backend.ready();
        if (room) {
          setBlocked(false);
          if (!spool) markHealthy();
        } else {
          retryAt = now + backoff;
          backoff = Math.min(backoff * 2, BACKOFF_MAX_MS);
        }
      }
      if (queue.length > 0) continue;
      const spoolWaiting = !!spool && !spool.isEmpty();
      if (closing && (!spoolWaiting || Date.now() >= closeDeadline)) return;
      if (!spoolWaiting && !blocked && !closing) {
        // Idle: the next write() starts the loop again.
        return;
      }
      await new Promise<void>((resolve) => {
        wake = resolve;
        const until = Math.max(0, Math.min(retryAt || Date.now() + BACKOFF_MIN_MS, closing ? closeDeadline : Infinity) - Date.now());
        const timer = setTimeout(resolve, Math.max(10, until));
        // A running gateway never waits on the trail to exit; a closing one finishes its flush first.
        if (!closing) timer.unref();
      });
      wake = undefined;
    }
  }

  // Records an earlier run left in the spool go first.
  if (spool && !spool.isEmpty()) {
    logger.warn({ spool: spool.dir, records: spool.records() }, 'audit records left in the spool by an earlier run are being sent');
    kick();
  }

  return {
    enabled: true,
    query: o.query,
    write(entry) {
      // A request refused because records could not be kept is counted, not recorded.
      if (entry.kind === 'request' && entry.error_code === 'audit_unavailable') return metrics.refusedRequests.inc();
      if (closed) return dropEntry(entry, 'closed');
      accepted++;
      if (queue.length >= o.queueSize) return dropEntry(entry, 'queue_full');
      let pending: PendingRecord;
      try {
        pending = toPending(entry);
      } catch (err) {
        return dropEntry(entry, 'unserializable', err);
      }
      queue.push(pending);
      metrics.queueDepth.set(queue.length);
      // Wakes the loop too if it is waiting out a backoff: the queue never waits for one.
      if (!loop || wake) kick();
    },
    refusing() {
      if (o.onFull !== 'refuse') return false;
      return blocked || queue.length >= o.queueSize;
    },
    async flush() {
      const until = accepted;
      if (settled < until) {
        if (!loop) kick();
        await new Promise<void>((resolve) => waiters.push({ until, resolve }));
      }
      await backend.sync().catch(() => {});
    },
    promise(id, lane) {
      return intents?.promise(id, lane);
    },
    async close() {
      if (closed) return;
      await this.flush();
      closing = true;
      closeDeadline = Date.now() + o.shutdownFlushMs;
      kick();
      await loop;
      closed = true;
      // Every record is in the sink or the spool now: nothing is left to compare after a clean stop.
      intents?.close();
      const left = spool?.records() ?? 0;
      if (left > 0) logger.warn({ spool: spool!.dir, records: left }, 'audit records remain in the spool; they are sent when the gateway starts again');
      await backend.close().catch((err: unknown) => logger.error({ err: String(err) }, 'closing the audit sink failed'));
      await spool?.close().catch(() => {});
    },
  };
}

/** The sink when `audit.sink: off`. */
export function createNullSink(): AuditSink {
  return { enabled: false, write() {}, promise: () => undefined, async flush() {}, async close() {}, refusing: () => false };
}
