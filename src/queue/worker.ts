// The queue worker: every replica runs one. It claims lines only while the
// global admission gate has room nobody is waiting for, runs at most
// `concurrency` of them (less after a 429 or an overload: it halves its pace
// and grows it back one line at a time), and retries a line's retryable
// failures with backoff until its attempts or its batch's deadline run out.
// Each line's result is recorded once (the store's done marker), and only
// then is its try charged and audited.
//
// Stopping: no new claims; lines in flight get the grace period, then are
// aborted and left in the queue unanswered, so the next start (or another
// replica) runs them.
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
/** Event-loop lag past which no new line starts: the process's CPU is spare capacity too. */
const MAX_LAG_MS = 5;
/** Retryable codes that say "slow down" rather than "that failed". */
const PACE_CODES = new Set(['rate_limited', 'upstream_rate_limited', 'overloaded', 'budget_unavailable']);

export class QueueWorker {
  /** Lines in flight in this process. */
  running = 0;
  /** The pace: lines this worker lets run at once now (AIMD, at most queue.concurrency). */
  pace: number;
  private pausedUntil = 0;
  private timer: NodeJS.Timeout | undefined;
  private ticking = false;
  private stopped = false;
  private lastSweep = 0;
  /** How late the worker's last timer fired, ms. */
  private lagMs = 0;
  private readonly abort = new AbortController();
  private readonly inflight = new Map<string, { controller: AbortController; done: Promise<void> }>();
  private idle: Array<() => void> = [];

  constructor(private readonly o: WorkerOptions) {
    this.pace = o.config().raw.queue.concurrency;
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
    const due = performance.now() + delayMs;
    this.timer = setTimeout(() => {
      // A timer that fires late says the process is short of CPU: interactive requests need it more than queued lines.
      this.lagMs = performance.now() - due;
      void this.tick();
    }, delayMs);
    this.timer.unref();
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
    return gate.inflight < gate.limits.maxInflight && !control.anyWaiting();
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
      const room = Math.floor(Math.min(this.pace, queue.concurrency)) - this.running;
      if (now < this.pausedUntil) next = this.pausedUntil - now;
      else if (room <= 0) next = queue.poll_ms;
      // Short of CPU, one line still runs, so a busy machine slows a batch down rather than stalling it.
      else if (!this.spareCapacity() || (this.lagMs > MAX_LAG_MS && this.running > 0)) next = Math.min(queue.poll_ms, 10);
      else {
        const claimed = await this.o.store.claim(this.o.consumer, room);
        for (const d of claimed) this.launch(d);
        // A full claim: there is more; ask again as soon as a line finishes or at once.
        if (claimed.length === room) next = 0;
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
