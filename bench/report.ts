// Turns the two sets of measurements into the printed table, the target
// checks and bench/results/latest.json.
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';

export interface Settings {
  durationS: number;
  warmupS: number;
  rate: number;
  ttfbCount: number;
  streams: number;
  slowChunkMs: number;
  targetCpu: number;
  loadCpu: number;
}

/** One target's figures, keyed by the row keys below. */
export type Figures = Record<RowKey, number>;

const ROWS = [
  { key: 'rps_c32', label: () => 'throughput, 32 connections (req/s)', digits: 0 },
  { key: 'p50_c32_ms', label: () => 'latency p50, 32 connections (ms)', digits: 2 },
  { key: 'p99_c32_ms', label: () => 'latency p99, 32 connections (ms)', digits: 2 },
  { key: 'rps_c128', label: () => 'throughput, 128 connections (req/s)', digits: 0 },
  { key: 'p50_c128_ms', label: () => 'latency p50, 128 connections (ms)', digits: 2 },
  { key: 'p99_c128_ms', label: () => 'latency p99, 128 connections (ms)', digits: 2 },
  { key: 'cpu_us_per_req_c32', label: () => 'CPU per request, 32 connections (µs)', digits: 0 },
  { key: 'cpu_us_per_req_c128', label: () => 'CPU per request, 128 connections (µs)', digits: 0 },
  { key: 'responses_cpu_us_per_req_c32', label: () => 'CPU per request, POST /v1/responses to the same chat upstream, 32 connections (µs)', digits: 0 },
  { key: 'messages_cpu_us_per_req_c32', label: () => 'CPU per request, POST /v1/messages to the same chat upstream, 32 connections (µs)', digits: 0 },
  { key: 'capacity_per_core', label: () => 'capacity of one core from CPU per request, 32 connections (req/s)', digits: 0 },
  { key: 'cpu_util_c32', label: () => 'CPU use, 32 connections (% of one core)', digits: 0 },
  { key: 'fixed_p50_ms', label: (s: Settings) => `latency p50 at ${s.rate} req/s, open loop (ms)`, digits: 2 },
  { key: 'fixed_p99_ms', label: (s: Settings) => `latency p99 at ${s.rate} req/s, open loop (ms)`, digits: 2 },
  { key: 'fixed_max_ms', label: (s: Settings) => `latency max at ${s.rate} req/s, open loop (ms)`, digits: 2 },
  { key: 'ttfb_p50_ms', label: () => 'stream time to first byte p50 (ms)', digits: 3 },
  { key: 'ttfb_p99_ms', label: () => 'stream time to first byte p99 (ms)', digits: 3 },
  { key: 'rss_after_load_mb', label: () => 'peak RSS after the load runs (MB)', digits: 1 },
  { key: 'rss_streams_mb', label: (s: Settings) => `peak RSS, ${s.streams} streams open, fresh process (MB)`, digits: 1 },
  { key: 'failed_requests', label: () => 'failed or non-2xx requests, all runs', digits: 0 },
] as const;

export type RowKey = (typeof ROWS)[number]['key'];

interface Target {
  target: string;
  met: boolean;
  detail: string;
}

function fmt(value: number, digits: number): string {
  if (!Number.isFinite(value)) return 'n/a';
  return value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

function ratio(gateway: number, bare: number): number {
  return bare === 0 ? (gateway === 0 ? 1 : Number.NaN) : gateway / bare;
}

function checkTargets(bare: Figures, gateway: Figures, s: Settings): Target[] {
  const share = ratio(gateway.rps_c32, bare.rps_c32);
  const cpuShare = ratio(gateway.capacity_per_core, bare.capacity_per_core);
  const p99Gap = gateway.fixed_p99_ms - bare.fixed_p99_ms;
  const ttfbGap = gateway.ttfb_p50_ms - bare.ttfb_p50_ms;
  const responsesCost = ratio(gateway.responses_cpu_us_per_req_c32, gateway.cpu_us_per_req_c32);
  const messagesCost = ratio(gateway.messages_cpu_us_per_req_c32, gateway.cpu_us_per_req_c32);
  return [
    { target: 'Responses ingress CPU per request <= 115% of chat', met: responsesCost <= 1.15, detail: `${fmt(responsesCost * 100, 1)}% of the same chat request` },
    { target: 'Messages ingress CPU per request <= 115% of chat', met: messagesCost <= 1.15, detail: `${fmt(messagesCost * 100, 1)}% of the same chat request` },
    { target: 'throughput >= 60% of bare at 32 connections', met: share >= 0.6, detail: `${fmt(share * 100, 1)}% of bare (by CPU per request: ${fmt(cpuShare * 100, 1)}%)` },
    { target: `p99 at ${s.rate} req/s within 1 ms of bare`, met: p99Gap <= 1, detail: `${fmt(p99Gap, 3)} ms over bare` },
    { target: 'stream TTFB (p50) within 0.5 ms of bare', met: ttfbGap <= 0.5, detail: `${fmt(ttfbGap, 3)} ms over bare` },
    { target: `gateway peak RSS < 150 MB with ${s.streams} streams`, met: gateway.rss_streams_mb < 150, detail: `${fmt(gateway.rss_streams_mb, 1)} MB` },
  ];
}

/**
 * What a change may cost against the revision before it: at most
 * BENCH_BASELINE_MAX_LOSS (default 10%) of throughput at 32 connections.
 */
function baselineTargets(base: Figures, gateway: Figures): Target[] {
  const maxLoss = Number(process.env.BENCH_BASELINE_MAX_LOSS ?? '0.1');
  const share = ratio(gateway.rps_c32, base.rps_c32);
  const cpuShare = ratio(gateway.capacity_per_core, base.capacity_per_core);
  return [
    {
      target: `throughput >= ${fmt((1 - maxLoss) * 100, 0)}% of the baseline at 32 connections`,
      met: share >= 1 - maxLoss,
      detail: `${fmt(share * 100, 1)}% of the baseline (by CPU per request: ${fmt(cpuShare * 100, 1)}%)`,
    },
  ];
}

export interface Report {
  settings: Settings;
  bare: Figures;
  gateway: Figures;
  /** BENCH_BASELINE: an earlier revision measured in the same run. */
  baseline?: { revision: string; figures: Figures };
  anomalies: string[];
  /** Every tool's own result, for latest.json. */
  raw: { bare: unknown; gateway: unknown; baseline?: unknown; workload?: unknown };
  resultsDir: string;
}

export function printReport(report: Report): void {
  const { bare, gateway, settings } = report;
  const base = report.baseline?.figures;
  const lines = base
    ? [`| metric | bare proxy | baseline (${report.baseline!.revision}) | gateway | gateway/bare | gateway/baseline |`, '|---|---:|---:|---:|---:|---:|']
    : ['| metric | bare proxy | gateway | gateway/bare |', '|---|---:|---:|---:|'];
  const rows = ROWS.map((row) => {
    const r = ratio(gateway[row.key], bare[row.key]);
    const cells = [row.label(settings), fmt(bare[row.key], row.digits)];
    if (base) cells.push(fmt(base[row.key], row.digits));
    cells.push(fmt(gateway[row.key], row.digits), `${fmt(r, 2)}×`);
    const vsBaseline = base ? ratio(gateway[row.key], base[row.key]) : undefined;
    if (vsBaseline !== undefined) cells.push(`${fmt(vsBaseline, 2)}×`);
    lines.push(`| ${cells.join(' | ')} |`);
    return { key: row.key, metric: row.label(settings), bare: bare[row.key], gateway: gateway[row.key], ratio: r, ...(base ? { baseline: base[row.key], vsBaseline } : {}) };
  });
  // Figures taken while requests failed measure the failure path: no target is met on them.
  const failed = bare.failed_requests + gateway.failed_requests + (base?.failed_requests ?? 0);
  const targets = [...checkTargets(bare, gateway, settings), ...(base ? baselineTargets(base, gateway) : [])].map((t) =>
    failed > 0 ? { ...t, met: false, detail: `${t.detail}, but ${failed} requests failed (see anomalies)` } : t,
  );

  console.log(`\n## Lanegate benchmark (${settings.durationS} s per run, target on CPU ${settings.targetCpu}, load on CPU ${settings.loadCpu})\n`);
  console.log(lines.join('\n'));
  console.log('\n### Targets\n');
  for (const t of targets) console.log(`- [${t.met ? 'x' : ' '}] ${t.target}: ${t.detail}${t.met ? '' : ' (NOT MET)'}`);
  if (report.anomalies.length > 0) {
    console.log('\n### Anomalies\n');
    for (const a of report.anomalies) console.log(`- ${a}`);
  }

  mkdirSync(report.resultsDir, { recursive: true });
  const file = join(report.resultsDir, 'latest.json');
  const json = {
    generatedAt: new Date().toISOString(),
    node: process.version,
    cpu: cpus()[0]?.model ?? 'unknown',
    settings,
    rows,
    targets,
    anomalies: report.anomalies,
    raw: report.raw,
  };
  writeFileSync(file, `${JSON.stringify(json, null, 2)}\n`);
  console.log(`\nwritten to ${file}`);
}
