// Single flight: while one request for a key is on its way upstream, identical
// requests wait for its answer instead of sending their own. Per process: two
// replicas may each send one (Redis would need a lock and a wake-up channel to
// do better, and a miss storm across replicas is bounded by their number).
import type { Cancel } from '../providers/cancel.js';

export type FlightResult = { kind: 'value'; value: string } | { kind: 'none' } | { kind: 'timeout' } | { kind: 'aborted' };

interface Flight {
  promise: Promise<string | undefined>;
  settle(value: string | undefined): void;
}

export type Joined =
  | { role: 'leader'; settle(value: string | undefined): void }
  | { role: 'follower'; wait(timeoutMs: number, cancel: Cancel): Promise<FlightResult> };

export class SingleFlight {
  private readonly flights = new Map<string, Flight>();

  get size(): number {
    return this.flights.size;
  }

  /**
   * The first caller for an id leads: it must settle the flight, with the
   * entry it stored or undefined when it has none. A leader that never
   * settles is given up after `maxLeadMs`, so the map cannot leak.
   */
  join(id: string, maxLeadMs: number): Joined {
    const existing = this.flights.get(id);
    if (existing) {
      return {
        role: 'follower',
        wait: (timeoutMs, cancel) => waitFor(existing.promise, timeoutMs, cancel),
      };
    }
    let resolve!: (value: string | undefined) => void;
    const promise = new Promise<string | undefined>((r) => (resolve = r));
    let settled = false;
    const timer = setTimeout(() => settle(undefined), maxLeadMs);
    timer.unref();
    const settle = (value: string | undefined) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (this.flights.get(id) === flight) this.flights.delete(id);
      resolve(value);
    };
    const flight: Flight = { promise, settle };
    this.flights.set(id, flight);
    return { role: 'leader', settle };
  }
}

/** The flight's answer, or why there is none: one promise settled by whichever comes first. */
function waitFor(promise: Promise<string | undefined>, timeoutMs: number, cancel: Cancel): Promise<FlightResult> {
  if (cancel.aborted) return Promise.resolve({ kind: 'aborted' });
  return new Promise<FlightResult>((resolve) => {
    const finish = (result: FlightResult) => {
      clearTimeout(timer);
      cancel.offAbort(onAbort);
      resolve(result);
    };
    const onAbort = () => finish({ kind: 'aborted' });
    const timer = setTimeout(() => finish({ kind: 'timeout' }), timeoutMs);
    cancel.onAbort(onAbort);
    // A flight's promise only ever resolves (settle passes undefined for no answer), so no rejection is lost.
    void promise.then((value) => finish(value === undefined ? { kind: 'none' } : { kind: 'value', value }));
  });
}
