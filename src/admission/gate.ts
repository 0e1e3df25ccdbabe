// One admission gate: a limit on requests in flight and a bounded wait queue
// in front of it, one FIFO per priority. The gateway's own queue is this one,
// bounded in length and in time; nothing past it (the upstream connection
// pool above all) should ever have to queue.

// `batch` is the queue worker's (batch lines, background responses): below
// every client, so queued work only ever takes capacity nobody else waits for.
export const PRIORITIES = ['high', 'normal', 'low', 'batch'] as const;
export type Priority = (typeof PRIORITIES)[number];

/**
 * Why a request was not admitted: the queue was full, it waited too long, it
 * would have (its expected wait was past its queue timeout, so it is told at
 * once instead of after the timeout), or a higher priority took its place.
 */
export type ShedReason = 'queue_full' | 'queue_timeout' | 'expected_wait' | 'displaced';

export interface GateLimits {
  maxInflight: number;
  maxQueue: number;
}

/** How a wait ended: admitted (holding a slot), shed, or the caller gave up. */
export type WaitOutcome = 'admitted' | ShedReason | 'aborted';

interface Waiter {
  readonly priority: number;
  settle(outcome: WaitOutcome): void;
}

/** Weight of the newest hold time in the smoothed one. */
const HOLD_SMOOTHING = 0.1;

const BATCH_RANK = PRIORITIES.indexOf('batch');

/**
 * Slots queued work (`batch`) never takes: an eighth of the gate's (none
 * under 8). A slot held by a batch line is not given back before its upstream
 * answers, so without this a batch that filled a gate would make the next
 * interactive request wait for a line to finish; with it, one finds a free
 * slot at once, and a batch that reaches the reserve waits (which tells the
 * worker to claim no more: src/queue/worker.ts).
 */
export function batchReserve(maxInflight: number): number {
  return Math.floor(maxInflight / 8);
}

export class AdmissionGate {
  inflight = 0;
  queued = 0;
  /** Smoothed time a slot is held, ms; 0 until the first one is given back. */
  holdMs = 0;
  private readonly queues: Waiter[][] = PRIORITIES.map(() => []);

  constructor(public limits: GateLimits) {}

  /** The config's current limits; a raised limit admits waiters at once, a lowered one lets in-flight requests finish. */
  configure(limits: GateLimits): void {
    if (limits.maxInflight === this.limits.maxInflight && limits.maxQueue === this.limits.maxQueue) return;
    this.limits = limits;
    this.pump();
  }

  /**
   * Takes a slot when one is free and nobody of the same or a higher priority
   * waits for it (they go first; batch work waiting at the reserve does not
   * hold back an interactive request); `batch` leaves the reserve free.
   */
  tryEnter(priority: Priority = 'normal'): boolean {
    const rank = PRIORITIES.indexOf(priority);
    if (this.inflight >= this.ceilingOf(rank) || this.waitingFrom(rank)) return false;
    this.inflight++;
    return true;
  }

  /** True when a request of this priority or a higher one waits. */
  private waitingFrom(rank: number): boolean {
    if (this.queued === 0) return false;
    for (let r = 0; r <= rank; r++) if (this.queues[r]!.length > 0) return true;
    return false;
  }

  /** Slots batch work may hold now: free slots outside the reserve (src/queue/worker.ts starts no line without one). */
  batchRoom(): number {
    return this.ceilingOf(BATCH_RANK) - this.inflight;
  }

  /** The in-flight count up to which a priority is admitted. */
  private ceilingOf(rank: number): number {
    return rank === BATCH_RANK ? this.limits.maxInflight - batchReserve(this.limits.maxInflight) : this.limits.maxInflight;
  }

  /**
   * Waits for a slot, at most `timeoutMs`. A full queue sheds at once, unless
   * the newcomer outranks someone waiting: then the newest waiter of the lowest
   * priority is shed instead, so a flood of low-priority requests cannot keep
   * high-priority ones out.
   */
  wait(priority: Priority, timeoutMs: number, signal: AbortSignal): Promise<WaitOutcome> | WaitOutcome {
    if (this.tryEnter(priority)) return 'admitted';
    if (signal.aborted) return 'aborted';
    if (timeoutMs <= 0) return 'queue_timeout';
    const rank = PRIORITIES.indexOf(priority);
    // Slots free up at about maxInflight per holdMs: a wait that would outlast
    // the timeout is refused now, not after it (a slow upstream makes a queue
    // useless, and the client is better off retrying elsewhere at once).
    if (this.expectedWaitMs(rank) > timeoutMs) return 'expected_wait';
    if (this.queued >= this.limits.maxQueue) {
      const victim = this.newestBelow(rank);
      if (!victim) return 'queue_full';
      victim.settle('displaced');
    }
    return new Promise<WaitOutcome>((resolve) => {
      let settled = false;
      const waiter: Waiter = {
        priority: rank,
        settle: (outcome) => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          signal.removeEventListener('abort', onAbort);
          if (outcome !== 'admitted') this.remove(waiter);
          resolve(outcome);
        },
      };
      const onAbort = () => waiter.settle('aborted');
      const timer = setTimeout(() => waiter.settle('queue_timeout'), timeoutMs);
      signal.addEventListener('abort', onAbort, { once: true });
      this.queues[rank]!.push(waiter);
      this.queued++;
    });
  }

  /** Gives a slot back, exactly once per admission, saying how long it was held. */
  leave(heldMs: number): void {
    this.holdMs = this.holdMs === 0 ? heldMs : this.holdMs + (heldMs - this.holdMs) * HOLD_SMOOTHING;
    this.inflight--;
    this.pump();
  }

  private expectedWaitMs(rank: number): number {
    let ahead = 0;
    for (let r = 0; r <= rank; r++) ahead += this.queues[r]!.length;
    return ((ahead + 1) * this.holdMs) / this.limits.maxInflight;
  }

  private pump(): void {
    while (this.inflight < this.limits.maxInflight) {
      const queue = this.queues.find((q) => q.length > 0);
      // The first waiter in priority order is batch work: it gets a slot only outside the reserve.
      if (!queue || this.inflight >= this.ceilingOf(queue[0]!.priority)) return;
      const next = queue.shift()!;
      this.queued--;
      this.inflight++;
      next.settle('admitted');
    }
  }

  private newestBelow(rank: number): Waiter | undefined {
    for (let r = this.queues.length - 1; r > rank; r--) {
      const queue = this.queues[r]!;
      if (queue.length > 0) return queue[queue.length - 1];
    }
    return undefined;
  }

  private remove(waiter: Waiter): void {
    const queue = this.queues[waiter.priority]!;
    const i = queue.indexOf(waiter);
    if (i < 0) return;
    queue.splice(i, 1);
    this.queued--;
  }
}
