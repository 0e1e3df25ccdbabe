// One Cancel per upstream attempt: cancelled when the request is (the client
// went, a run limit), when the attempt's total time is up, or when its first
// byte is late.
import { CancelToken, type Cancel } from '../providers/cancel.js';

function timeoutReason(what: string): DOMException {
  return new DOMException(what, 'TimeoutError');
}

export class Deadline extends CancelToken {
  readonly #parent: Cancel;
  readonly #onParentAbort = (reason: unknown) => this.abort(reason);
  readonly #total: NodeJS.Timeout;
  #firstByte: NodeJS.Timeout | undefined = undefined;

  constructor(parent: Cancel, totalMs: number) {
    super();
    this.#parent = parent;
    parent.onAbort(this.#onParentAbort);
    this.#total = setTimeout(() => this.abort(timeoutReason('total timeout')), totalMs);
  }

  /** Starts a timer that cancels unless `clearFirstByte` is called first. */
  armFirstByte(ms: number): void {
    this.#firstByte = setTimeout(() => this.abort(timeoutReason('first byte timeout')), ms);
  }

  clearFirstByte(): void {
    if (this.#firstByte) clearTimeout(this.#firstByte);
    this.#firstByte = undefined;
  }

  /** The attempt is over: stop its timers and stop following the request. */
  clear(): void {
    clearTimeout(this.#total);
    this.clearFirstByte();
    this.#parent.offAbort(this.#onParentAbort);
  }
}

export function createDeadline(parent: Cancel, totalMs: number): Deadline {
  return new Deadline(parent, totalMs);
}
