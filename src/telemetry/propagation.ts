// The hook provider adapters call to put `traceparent` (and `tracestate`) on
// upstream requests. It imports nothing from OpenTelemetry: with tracing off
// nothing is ever current and a call costs one comparison.
//
// Which attempt is current is set synchronously around the call into the
// adapter (tracing.ts), not with AsyncLocalStorage, whose promise hooks
// would slow every request in the process. That works because adapters build
// their upstream request, headers included, synchronously when called,
// before their first await; an adapter that did not would send no
// traceparent, never a wrong one.
export type TraceHeaderInjector = (headers: Record<string, string>) => void;

let current: TraceHeaderInjector | undefined;

/** Adds the current attempt's trace context to upstream headers, when there is one. */
export function addTraceHeaders(headers: Record<string, string>): void {
  if (current !== undefined) current(headers);
}

/** Runs `fn` (the synchronous part of an adapter call) with `inject` as the current trace context. */
export function withTraceHeaders<T>(inject: TraceHeaderInjector, fn: () => T): T {
  const outer = current;
  current = inject;
  try {
    return fn();
  } finally {
    current = outer;
  }
}
