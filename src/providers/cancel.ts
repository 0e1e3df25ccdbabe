// Cancellation for requests and upstream attempts, without an AbortController
// each. An AbortSignal is an EventTarget: making one, and adding and removing
// its listeners, was a visible share of a request's CPU, paid on every request
// although almost none is ever cancelled. A Cancel is a flag and a list of
// callbacks; the AbortSignal is made only when an API that needs one asks
// (streams, timers), and follows the Cancel from then on.

export interface Cancel {
  readonly aborted: boolean;
  /** Why it was cancelled: the client left, a timeout (a DOMException named TimeoutError), a run limit. */
  readonly reason: unknown;
  /** The same cancellation as an AbortSignal, made on first use. */
  readonly signal: AbortSignal;
  /** Runs `fn` once when cancelled (at once if it already is). */
  onAbort(fn: (reason: unknown) => void): void;
  offAbort(fn: (reason: unknown) => void): void;
}

export class CancelToken implements Cancel {
  aborted = false;
  reason: unknown = undefined;
  #controller: AbortController | undefined = undefined;
  #listeners: Array<(reason: unknown) => void> | undefined = undefined;

  get signal(): AbortSignal {
    if (!this.#controller) {
      this.#controller = new AbortController();
      if (this.aborted) this.#controller.abort(this.reason);
    }
    return this.#controller.signal;
  }

  abort(reason?: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason ?? new DOMException('This operation was aborted', 'AbortError');
    this.#controller?.abort(this.reason);
    const listeners = this.#listeners;
    this.#listeners = undefined;
    if (listeners) for (const fn of listeners) fn(this.reason);
  }

  onAbort(fn: (reason: unknown) => void): void {
    if (this.aborted) fn(this.reason);
    else (this.#listeners ??= []).push(fn);
  }

  offAbort(fn: (reason: unknown) => void): void {
    const listeners = this.#listeners;
    if (!listeners) return;
    const i = listeners.lastIndexOf(fn);
    if (i >= 0) listeners.splice(i, 1);
  }
}

/**
 * A Cancel that follows an AbortSignal (for callers that hold one). Its
 * listener stays on the signal until that aborts: give each request a signal
 * of its own scope, never one that lives for the process.
 */
export function cancelOf(signal: AbortSignal): CancelToken {
  const token = new CancelToken();
  if (signal.aborted) token.abort(signal.reason);
  else signal.addEventListener('abort', () => token.abort(signal.reason), { once: true });
  return token;
}

/** What undici's abort wants: an Error. Our reasons are Errors already (DOMException is one). */
export function abortError(reason: unknown): Error {
  return reason instanceof Error ? reason : new DOMException('This operation was aborted', 'AbortError');
}
