// Latency summaries shared by the Node load generators. Values are in
// milliseconds; percentiles are nearest-rank on the sorted samples.

export interface LatencySummary {
  count: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

export function summarise(samples: ArrayLike<number>, count = samples.length): LatencySummary {
  if (count === 0) return { count: 0, p50Ms: Number.NaN, p99Ms: Number.NaN, maxMs: Number.NaN };
  const sorted = Float64Array.from({ length: count }, (_, i) => samples[i] ?? Number.NaN).sort();
  const at = (p: number): number => sorted[Math.min(count - 1, Math.ceil((p / 100) * count) - 1)] ?? Number.NaN;
  return { count, p50Ms: at(50), p99Ms: at(99), maxMs: sorted[count - 1] ?? Number.NaN };
}

/** Prints the one result line the orchestrator (run.ts) looks for. */
export function printResult(result: object): void {
  console.log(`BENCH_RESULT ${JSON.stringify(result)}`);
}
