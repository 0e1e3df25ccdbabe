// One AbortController per upstream attempt: aborted when the client goes,
// when the attempt's total time is up, or when its first byte is late.

export interface Deadline {
  readonly signal: AbortSignal;
  /** Starts a timer that aborts unless `clearFirstByte` is called first. */
  armFirstByte(ms: number): void;
  clearFirstByte(): void;
  clear(): void;
}

function timeoutReason(what: string): DOMException {
  return new DOMException(what, 'TimeoutError');
}

export function createDeadline(parent: AbortSignal, totalMs: number): Deadline {
  const controller = new AbortController();
  const onParentAbort = () => controller.abort(parent.reason);
  if (parent.aborted) controller.abort(parent.reason);
  else parent.addEventListener('abort', onParentAbort, { once: true });
  const total = setTimeout(() => controller.abort(timeoutReason('total timeout')), totalMs);
  let firstByte: NodeJS.Timeout | undefined;

  return {
    signal: controller.signal,
    armFirstByte(ms) {
      firstByte = setTimeout(() => controller.abort(timeoutReason('first byte timeout')), ms);
    },
    clearFirstByte() {
      if (firstByte) clearTimeout(firstByte);
      firstByte = undefined;
    },
    clear() {
      clearTimeout(total);
      if (firstByte) clearTimeout(firstByte);
      parent.removeEventListener('abort', onParentAbort);
    },
  };
}
