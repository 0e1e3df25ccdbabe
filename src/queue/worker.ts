// The queue worker: every replica runs one. It fills the capacity interactive
// traffic leaves, and only that:
// - a line starts only while the global admission gate has batch room (its
//   free slots outside the reserve kept for interactive requests) and nobody
//   waits at any gate (a deployment's included, so it paces itself to the
//   deployments' limits: when its own lines fill one, it starts no more);
// - the event loop is the gateway's CPU: a controller reads, every 100 ms,
//   how busy the loop was and how late it ran, grows the lines in flight
//   while it was busy under 85% of the time and on time, and cuts them when
//   not, so interactive requests do not queue behind batch work for the CPU;
// - lines start one per turn of the event loop (setImmediate), after the
//   loop has polled for I/O, and a line yields again between its run and its
//   recording: an interactive request that arrives meanwhile runs first;
// - an upstream 429 or an overload halves its pace and pauses claims for a
//   moment (AIMD), and a line's retryable failures are retried with backoff
//   until its attempts or its batch's deadline run out.
// Each line's result is recorded once (the store's done marker), and only
// then is its try charged and audited.
//
// Lines are claimed ahead only as many as may start now; one that has not
// started within HAND_BACK_MS all the same (the replica lost its room to
// interactive traffic, its upstreams' pace or the CPU) is handed back to the
// queue, so an idle replica takes it at once instead of this one sitting on
// it, its claim renewed, for as long as it stays busy.
//
// Stopping: no new claims; lines in flight get the grace period, then are
// aborted and left in the queue unanswered, so the next start (or another
// replica) runs them; claimed lines not started yet are handed back.
import { monitorEventLoopDelay, performance, type EventLoopUtilization, type IntervalHistogram } from 'node:perf_hooks';
import { GLOBAL_GATE, globalLimitsOf } from '../admission/control.js';
import type { AuditSink } from '../audit/transport/writer.js';
import type { CompiledConfig } from '../config/compile.js';
import type { Services } from '../pipeline/context.js';
import type { Pipeline } from '../pipeline/stage.js';
import { finishTry, runQueued, type Try } from './execute.js';
import type { QueueMetrics } from './metrics.js';
import type { Delivery, LineResult, WorkItem, WorkStore } from './types.js';

/** What a kind of work (batch lines, background responses) does around the run. */
export interface WorkHandler {
  /**
   * Before running: the result to record without running (the batch was
   * cancelled, its window passed), `drop` for work with no owner any more, or
   * what to run and until when.
   */
  prepare(item: WorkItem): Promise<{ result: LineResult } | 'drop' | { pipeline: Pipeline; runId: string; deadline: number }>;
  /** The result a finished try records (before its after phase runs: a handler may still change what gets stored). */
  resultOf(item: WorkItem, t: Try): LineResult | Promise<LineResult>;
  /** Once the result is recorded (or was already): finalize what is complete. */
  recorded(item: WorkItem, result: LineResult | undefined, t: Try | undefined): Promise<void>;
  /** Periodically: finish what no line will finish (a batch cancelled with nothing left to run). */
  sweep?(): Promise<void>;
}

export interface WorkerOptions {
  store: WorkStore;
  config: () => CompiledConfig;
  services: () => Services;
  audit: AuditSink;
  consumer: string;
  handlers: Record<WorkItem['kind'], WorkHandler>;
  metrics: QueueMetrics;
  /** A local store calls this on enqueue, so an idle worker starts at once. */
  onEnqueue?: (listener: () => void) => void;
}

const MAX_BACKOFF_MS = 30_000;
const SWEEP_EVERY_MS = 1_000;
/**
 * The share of a window the event loop may spend busy (its utilization)
 * while lines are in flight: a request arriving at a loop busy a share u of
 * the time waits, on average, about u / (1 - u) of the slices it runs in
 * (0.3 ms or so each here); at 0.85 that stays under the 2 ms bound
 * on the interactive p99 rise, and leaves the batch most of the spare CPU.
 */
const MAX_LOOP_BUSY = 0.85;
/**
 * How late the event loop may run (p90 of a window). Past it, when the loop
 * is also busy more than half the time (so the lateness is the process's own
 * work, not other processes taking the CPU from an idle loop), the lines in
 * flight are cut too.
 */
const TARGET_LOOP_DELAY_MS = 1;
const LATE_LOOP_BUSY = 0.5;
/** The controller's window. */
const CONTROL_MS = 100;
/** The loop delay monitor's sampling interval, ms. */
const DELAY_RESOLUTION_MS = 2;
/** Lines in flight the controller starts from. */
const START_LIMIT = 4;
/** A claimed line not started within this (at most a third of queue.claim_idle_ms) is handed back. */
const HAND_BACK_MS = 1_000;
/** Retryable codes that say "slow down" rather than "that failed". */
const PACE_CODES = new Set(['rate_limited', 'upstream_rate_limited', 'overloaded', 'budget_unavailable']);

export class QueueWorker {
  /** Lines in flight in this process. */
  running = 0;
  /** The pace: lines this worker lets run at once as upstreams allow (AIMD on 429s and overload, at most queue.concurrency). */
  pace: number;
  /** Lines this worker lets run at once as the CPU allows (the loop delay controller). */
  limit: number;
  private pausedUntil = 0;
  private timer: NodeJS.Timeout | undefined;
  private ticking = false;
  private stopped = false;
  private lastSweep = 0;
  /** Claimed lines waiting for their turn to start, with when they were claimed. */
  private ready: Array<{ delivery: Delivery; claimedAt: number }> = [];
  private starting = false;
  private readonly delay: IntervalHistogram = monitorEventLoopDelay({ resolution: DELAY_RESOLUTION_MS });
  private control: NodeJS.Timeout | undefined;
  private elu: EventLoopUtilization | undefined;
  private readonly abort = new AbortController();
  private readonly inflight = new Map<string, { controller: AbortController; done: Promise<void> }>();
  private idle: Array<() => void> = [];

  constructor(private readonly o: WorkerOptions) {
    this.pace = o.config().raw.queue.concurrency;
    this.limit = Math.min(START_LIMIT, this.pace);
    o.onEnqueue?.(() => this.kick(0));
  }

  start(): void {
    this.kick(0);
  }

  /** Aborts this process's run of the owner's work (a cancelled background response). */
  abortRunning(owner: string, reason: Error): void {
    for (const [id, run] of this.inflight) if (id === owner || id.startsWith(`${owner}:`)) run.controller.abort(reason);
  }

  async stop(graceMs: number): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    this.setActive(false);
    // Claimed, not started: handed back, for another replica (or the next start) to take at once.
    const unstarted = this.ready.splice(0);
    // Bounded: a Redis that does not answer must not hold up the shutdown (the lines are then taken over after the claim timeout).
    await Promise.race([Promise.all(unstarted.map((r) => this.giveBack(r.delivery))), new Promise<void>((resolve) => setTimeout(resolve, 1_000).unref())]);
    if (this.running > 0) {
      await Promise.race([new Promise<void>((resolve) => this.idle.push(resolve)), new Promise<void>((resolve) => setTimeout(resolve, graceMs).unref())]);
    }
    // What is still running is abandoned unanswered: it stays queued for the next start.
    this.abort.abort(new Error('the gateway is shutting down'));
    await Promise.all([...this.inflight.values()].map((r) => r.done));
  }

  private kick(delayMs: number): void {
    if (this.stopped) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.tick(), delayMs);
    this.timer.unref();
  }

  /** Lines that may be in flight now: the least of the upstreams' pace, the CPU's limit and queue.concurrency. */
  private allowed(): number {
    const queue = this.o.config().raw.queue;
    return Math.max(1, Math.floor(Math.min(this.pace, queue.yield_cpu ? this.limit : Infinity, queue.concurrency)));
  }

  /** The loop delay monitor and the controller run only while there is work: an idle gateway pays nothing. */
  private setActive(active: boolean): void {
    if (active && !this.control && !this.stopped) {
      this.delay.reset();
      this.delay.enable();
      this.elu = performance.eventLoopUtilization();
      this.control = setInterval(() => this.adjust(), CONTROL_MS);
      this.control.unref();
    } else if (!active && this.control) {
      clearInterval(this.control);
      this.control = undefined;
      this.delay.disable();
    }
  }

  /**
   * Once a window: a late loop cuts the lines in flight by 30%; an on-time
   * loop with the limit in use grows it by a quarter (at least one line), so
   * a batch reaches the spare capacity in about a second and gives it back
   * within a window or two of interactive traffic rising.
   */
  private adjust(): void {
    // The histogram holds the intervals between its timer's runs: the sampling interval itself is not lateness.
    const lateMs = this.delay.count > 0 ? this.delay.percentile(90) / 1e6 - DELAY_RESOLUTION_MS : 0;
    this.delay.reset();
    const now = performance.eventLoopUtilization();
    const busy = this.elu ? performance.eventLoopUtilization(now, this.elu).utilization : 0;
    this.elu = now;
    const max = this.o.config().raw.queue.concurrency;
    if (busy > MAX_LOOP_BUSY || (lateMs > TARGET_LOOP_DELAY_MS && busy > LATE_LOOP_BUSY)) this.limit = Math.max(1, this.limit * 0.7);
    else if (this.running >= Math.floor(this.limit)) this.limit = Math.min(max, Math.max(this.limit + 1, this.limit * 1.25));
    this.handBack();
    if (this.running === 0 && this.ready.length === 0) this.setActive(false);
    this.startNext();
    this.kick(0);
  }

  /**
   * Starts the next claimed line on the next turn of the event loop, after
   * its I/O poll (so requests that arrived are served first), one line a
   * turn, while the limits and the gates allow.
   */
  private startNext(): void {
    if (this.starting || this.stopped || this.ready.length === 0) return;
    this.starting = true;
    setImmediate(() => {
      this.starting = false;
      // Paused after a 429 or an overload: claimed lines wait too.
      if (this.stopped || Date.now() < this.pausedUntil || this.running >= this.allowed() || !this.spareCapacity()) return;
      const next = this.ready.shift();
      if (!next) return;
      this.launch(next.delivery);
      this.startNext();
    });
  }

  /**
   * Room that no request waits for: a free global slot, and nobody queued at
   * any gate (a deployment's included, so the worker paces itself to the
   * deployments' limits: when its own lines fill one, it starts no more).
   */
  private spareCapacity(): boolean {
    const config = this.o.config();
    const control = this.o.services().admission;
    if (!control || !config.raw.admission.enabled) return true;
    const gate = control.gate(GLOBAL_GATE, globalLimitsOf(config.raw.admission));
    return gate.batchRoom() > 0 && !control.anyWaiting();
  }

  /**
   * Hands back the claimed lines that have waited HAND_BACK_MS without
   * starting: this replica has had no room for them since, and renewing
   * their claims would keep every other replica from running them.
   */
  private handBack(): void {
    if (this.ready.length === 0) return;
    const waitMs = Math.min(HAND_BACK_MS, this.o.config().raw.queue.claim_idle_ms / 3);
    const now = Date.now();
    const keep = this.ready.filter((r) => now - r.claimedAt < waitMs);
    if (keep.length === this.ready.length) return;
    for (const r of this.ready) if (!keep.includes(r)) void this.giveBack(r.delivery);
    this.ready = keep;
  }

  private async giveBack(d: Delivery): Promise<void> {
    try {
      await this.o.store.giveBack(d);
    } catch (err) {
      // Still pending for this replica and no longer renewed: another takes it over after queue.claim_idle_ms.
      this.o.services().logger.warn({ err: String(err), item: d.item.id }, 'a claimed line could not be handed back; it is taken over after the claim timeout');
    }
  }

  private async tick(): Promise<void> {
    if (this.ticking || this.stopped) return;
    this.ticking = true;
    const queue = this.o.config().raw.queue;
    let next = queue.poll_ms;
    try {
      const now = Date.now();
      if (now - this.lastSweep >= SWEEP_EVERY_MS) {
        this.lastSweep = now;
        for (const h of Object.values(this.o.handlers)) await h.sweep?.();
      }
      // Claimed ahead: up to the lines allowed, so the next ones are at hand when one finishes (one claim per round trip, not per line).
      const room = this.allowed() - this.running - this.ready.length;
      if (now < this.pausedUntil) next = this.pausedUntil - now;
      else if (room <= 0) {
        next = queue.poll_ms;
        this.startNext();
      }
      else if (!this.spareCapacity()) next = Math.min(queue.poll_ms, 10);
      else {
        const claimed = await this.o.store.claim(this.o.consumer, room);
        if (claimed.length > 0) {
          const claimedAt = Date.now();
          this.ready.push(...claimed.map((delivery) => ({ delivery, claimedAt })));
          this.setActive(true);
          this.startNext();
        }
      }
    } catch (err) {
      this.o.services().logger.error({ err: String(err) }, 'the work queue could not be read; retrying');
      next = Math.max(queue.poll_ms, 1_000);
    } finally {
      this.ticking = false;
    }
    this.kick(next);
  }

  private launch(d: Delivery): void {
    this.running++;
    const controller = new AbortController();
    const done = this.runLine(d, AbortSignal.any([controller.signal, this.abort.signal]))
      .catch((err: unknown) => this.o.services().logger.error({ err: String(err), item: d.item.id }, 'a queued line failed to run; it stays queued'))
      .finally(() => {
        this.o.store.release(d);
        this.running--;
        this.inflight.delete(d.item.id);
        if (this.running === 0) for (const resolve of this.idle.splice(0)) resolve();
        this.startNext();
        this.kick(0);
      });
    this.inflight.set(d.item.id, { controller, done });
  }

  private async runLine(d: Delivery, signal: AbortSignal): Promise<void> {
    const { store, handlers, metrics } = this.o;
    const item = d.item;
    const handler = handlers[item.kind];
    // Done already: another replica answered it before this one took it over.
    if (await store.isDone(item)) return store.drop(d);
    const plan = await handler.prepare(item);
    if (plan === 'drop') return store.drop(d);
    if ('result' in plan) {
      await store.complete(d, plan.result);
      metrics.lines.labels(item.kind, plan.result.outcome).inc();
      return handler.recorded(item, plan.result, undefined);
    }
    const queue = this.o.config().raw.queue;
    let backoff = queue.backoff_ms;
    for (let attempt = 1; ; attempt++) {
      const t = await runQueued({ pipeline: plan.pipeline, config: this.o.config(), services: this.o.services(), item, runId: plan.runId, signal });
      // The run and its recording are two slices of CPU: requests that arrived in between go first.
      await yieldToIO();
      // Shutting down mid-line: the answer is not the line's; it runs again after the restart.
      if (this.abort.signal.aborted) {
        await finishTry(t, { charge: true });
        return;
      }
      const e = t.error;
      const wait = e?.retryAfter !== undefined ? Math.max(backoff, e.retryAfter * 1000) : backoff;
      const retry = e !== undefined && e.retryable && !signal.aborted && attempt < queue.max_attempts && Date.now() + wait < plan.deadline;
      if (!retry) {
        this.onOutcome(e?.code);
        const result = await handler.resultOf(item, t);
        const won = await store.complete(d, result);
        await finishTry(t, { charge: won, audit: this.o.audit });
        if (won) metrics.lines.labels(item.kind, result.outcome).inc();
        else metrics.duplicates.inc();
        return handler.recorded(item, won ? result : undefined, t);
      }
      // A retried try is settled (nothing spent) but not audited: the line gets one record, its last try's.
      await finishTry(t, { charge: true });
      this.onOutcome(e.code);
      metrics.retries.labels(e.code).inc();
      await sleep(wait, signal);
      backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
    }
  }

  /** AIMD: a 429 or an overload halves the pace and pauses claims for a moment; each success grows it back. */
  private onOutcome(code: string | undefined): void {
    const max = this.o.config().raw.queue.concurrency;
    if (code && PACE_CODES.has(code)) {
      this.pace = Math.max(1, this.pace / 2);
      this.pausedUntil = Math.max(this.pausedUntil, Date.now() + this.o.config().raw.queue.backoff_ms);
      this.o.metrics.backoffs.labels(code).inc();
    } else {
      this.pace = Math.min(max, this.pace + 1 / Math.max(1, this.pace));
    }
  }
}

function yieldToIO(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}
