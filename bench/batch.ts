// The batch phase of `npm run bench` (also on its own: node --import tsx bench/batch.ts).
//
// One gateway process as shipped (dist/, the Dockerfile's flags; the
// single-instance default: journal-file queue) alone on the target CPU, in
// front of a mock deployment that answers in BENCH_BATCH_LATENCY_MS and
// admits BENCH_BATCH_SLOTS requests at once. Interactive chat requests arrive
// at a fixed rate (open loop from the load CPU, latency from the scheduled
// send) for BENCH_BATCH_DURATION s, first alone, then while a
// BENCH_BATCH_LINES-line batch drains; BENCH_BATCH_ROUNDS rounds of both.
//
// The capacity left over is what binds first of:
// - the gateway's CPU: one core (it is pinned to one) divided by the CPU time
//   an interactive request costs at full load (each round starts with 2 s of
//   closed-loop requests, as many at once as the deployment has slots), less
//   the interactive rate;
// - the deployment: slots / latency, less the interactive rate.
// The mock answers in-process, so its CPU is in both figures alike.
// Reported per round and as medians: interactive p50/p99 alone and with the
// batch, the batch's lines a second, the leftover and the share of it used,
// and CPU per batch line against CPU per interactive request (a line that
// costs more CPU than a request leaves fewer lines a second in the same CPU).
// Targets (issue M): p99 rises < 2 ms; the batch uses >= 80% of the leftover.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI, { toFile } from 'openai';
import { Pool } from 'undici';
import { hashKey } from '../src/auth/keys.js';
import { summarise, type LatencySummary } from './percentiles.js';
import { cpuTimeUs, installCleanup, pinSelf, startServer, watchCpu, type Server } from './processes.js';
import { baseSettings, buildIfStale, envNumber, finishRun, prepareBaseline, runBench, shippedGateway } from './setup.js';

const KEY = 'sk-bench-batch-0123456789';

export interface BatchRound {
  alone: LatencySummary;
  withBatch: LatencySummary;
  p99RiseMs: number;
  /** CPU time of one interactive request at full load (the round's capacity run), µs. */
  cpuPerRequestUs: number;
  /** The same in the quiet "alone" window, for comparison: fixed costs spread over few requests. */
  cpuPerQuietRequestUs: number;
  /** CPU time of one batch line: the with-batch window's CPU less the interactive share, per line, µs. */
  cpuPerLineUs: number;
  /** The gateway's CPU use, % of one core, alone and with the batch. */
  cpuAlonePct: number;
  cpuWithPct: number;
  /** Busy time of the target CPU not spent in the gateway (other processes on a shared machine), % of the with-batch window. */
  othersOnCpuPct: number;
  batchLinesPerS: number;
  cpuCapacityPerS: number;
  leftoverPerS: number;
  binds: 'cpu' | 'deployment';
  leftoverUsed: number;
  /**
   * On a shared CPU the gateway does not get a whole core: the closed-loop
   * run's own throughput is what it got this round, and that less the
   * interactive rate is the leftover it could have had (shown beside, no target).
   */
  gotPerS: number;
  gotLeftoverUsed: number;
  /** The same in CPU: the gateway's CPU with the batch less alone, over one core less alone (a batch line need not cost what a request does). */
  cpuLeftoverUsed: number;
  failed: number;
}

export interface BatchFigures {
  label: string;
  slots: number;
  latencyMs: number;
  rate: number;
  lines: number;
  seconds: number;
  deploymentCapacityPerS: number;
  rounds: BatchRound[];
  /** Medians over the rounds. */
  median: { aloneP50: number; aloneP99: number; withP50: number; withP99: number; p99RiseMs: number; batchLinesPerS: number; leftoverPerS: number; leftoverUsed: number; gotLeftoverUsed: number; cpuLeftoverUsed: number; cpuPerRequestUs: number; cpuPerLineUs: number };
}

function config(dir: string, slots: number, latencyMs: number, concurrency: number): string {
  return `
server: { port: 0, host: 127.0.0.1 }
logging: { level: info, access_log: false }
keys:
  - { id: bench, sha256: ${hashKey(KEY)}, app: bench, team: bench }
providers:
  mock: { type: mock, latency_ms: ${latencyMs} }
models:
  bench: { deployments: [{ provider: mock, model: bench }] }
admission:
  deployments: { "mock/bench": { max_inflight: ${slots}, max_queue: 1024 } }
cache: { enabled: false }
audit: { sink: file, dir: ${dir}/audit }
queue: { concurrency: ${concurrency}, dir: ${dir}/queue }
`;
}

/** Open loop: request i is sent at start + i / rate; its latency counts from then. */
async function interactive(url: string, rate: number, seconds: number, tag: string): Promise<{ latency: LatencySummary; failed: number }> {
  const pool = new Pool(url, { connections: 64 });
  const count = Math.round(rate * seconds);
  const latencies = new Float64Array(count);
  let failed = 0;
  const start = performance.now() + 20;
  const sends: Array<Promise<void>> = [];
  for (let i = 0; i < count; i++) {
    const at = start + (i * 1000) / rate;
    const wait = at - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    sends.push(
      pool
        .request({
          path: '/v1/chat/completions',
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${KEY}` },
          body: JSON.stringify({ model: 'bench', messages: [{ role: 'user', content: `${tag} ${i}` }], max_tokens: 16 }),
        })
        .then(async (res) => {
          await res.body.text();
          if (res.statusCode !== 200) failed++;
          latencies[i] = performance.now() - at;
        }),
    );
  }
  await Promise.all(sends);
  await pool.close();
  return { latency: summarise(latencies), failed };
}

/**
 * The gateway's capacity: closed loop (as many requests in flight as the
 * deployment has slots, so the gateway's CPU binds before the deployment
 * does) for `seconds`; the CPU time per answered request at full load is what
 * one core divides into. A quiet window's CPU per request is no guide: at
 * 200 req/s timers, idle polls and cold caches inflate it threefold.
 */
async function saturate(url: string, pid: number, seconds: number, connections: number): Promise<{ perS: number; cpuPerRequestUs: number }> {
  const pool = new Pool(url, { connections });
  const body = JSON.stringify({ model: 'bench', messages: [{ role: 'user', content: 'capacity' }], max_tokens: 16 });
  const until = performance.now() + seconds * 1000;
  const cpu0 = cpuTimeUs(pid);
  const t0 = performance.now();
  let answered = 0;
  const loop = async () => {
    while (performance.now() < until) {
      const res = await pool.request({ path: '/v1/chat/completions', method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${KEY}` }, body });
      await res.body.text();
      if (res.statusCode === 200) answered++;
    }
  };
  await Promise.all(Array.from({ length: connections }, loop));
  const cpuUs = cpuTimeUs(pid) - cpu0;
  const wallS = (performance.now() - t0) / 1000;
  await pool.close();
  return { perS: answered / wallS, cpuPerRequestUs: cpuUs / Math.max(1, answered) };
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};

async function submit(client: OpenAI, lines: number, tag: string): Promise<string> {
  const input = Array.from({ length: lines }, (_, i) => JSON.stringify({ custom_id: `l${i}`, method: 'POST', url: '/v1/chat/completions', body: { model: 'bench', messages: [{ role: 'user', content: `${tag} line ${i}` }], max_tokens: 16 } })).join('\n');
  const file = await client.files.create({ file: await toFile(Buffer.from(input), 'bench.jsonl'), purpose: 'batch' });
  const batch = await client.batches.create({ input_file_id: file.id, endpoint: '/v1/chat/completions', completion_window: '24h' });
  return batch.id;
}

async function waitFinal(client: OpenAI, id: string, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    const b = await client.batches.retrieve(id);
    if (['completed', 'failed', 'expired', 'cancelled'].includes(b.status)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`batch ${id} did not end within ${timeoutMs} ms`);
}

interface PhaseSettings {
  targetCpu: number;
  loadCpu: number;
  slots: number;
  latencyMs: number;
  rate: number;
  seconds: number;
  lines: number;
  rounds: number;
  dir: string;
}

function phaseSettings(): PhaseSettings {
  const { targetCpu, loadCpu } = baseSettings();
  return {
    targetCpu,
    loadCpu,
    slots: envNumber('BENCH_BATCH_SLOTS', 64),
    latencyMs: envNumber('BENCH_BATCH_LATENCY_MS', 20),
    rate: envNumber('BENCH_BATCH_RATE', 200),
    seconds: envNumber('BENCH_BATCH_DURATION', 5),
    lines: envNumber('BENCH_BATCH_LINES', 10_000),
    rounds: Math.max(1, envNumber('BENCH_BATCH_ROUNDS', 3)),
    dir: mkdtempSync(join(tmpdir(), 'lanegate-bench-batch-')),
  };
}

interface Running {
  server: Server;
  client: OpenAI;
}

/** Starts a gateway (this checkout's, or the one built under `root`) on its own config and queue, warms it, runs `fn`, stops it. */
async function withGateway<T>(s: PhaseSettings, name: string, root: string | undefined, fn: (gw: Running) => Promise<T>): Promise<T> {
  const dir = join(s.dir, name);
  mkdirSync(dir, { recursive: true });
  const configFile = join(dir, 'gateway.yaml');
  writeFileSync(configFile, config(dir, s.slots, s.latencyMs, envNumber('BENCH_BATCH_CONCURRENCY', s.slots)));
  const shipped = root ? shippedGateway(configFile, root) : shippedGateway(configFile);
  const server = await startServer({ name, cpu: s.targetCpu, args: shipped.args, logFile: join(dir, 'gateway.log'), readyMessage: 'lanegate listening', env: { ...process.env, ...shipped.env } });
  try {
    const client = new OpenAI({ apiKey: KEY, baseURL: `${server.url}/v1`, maxRetries: 0 });
    // Warm both paths: interactive requests, and a small batch run to its end.
    const warm = await submit(client, 1_000, 'warmup');
    await interactive(server.url, s.rate, 2, 'warmup');
    await waitFinal(client, warm, 60_000);
    return await fn({ server, client });
  } finally {
    await server.stop();
  }
}

async function measureRound(s: PhaseSettings, { server: gw, client }: Running, round: number): Promise<BatchRound> {
  const { targetCpu, loadCpu, slots, rate, seconds } = s;
  const deploymentCapacityPerS = (slots * 1000) / s.latencyMs;
  const capacity = await saturate(gw.url, gw.pid, 2, slots);
  const aloneCpu = watchCpu(gw.pid, targetCpu, loadCpu);
  const alone = await interactive(gw.url, rate, seconds, `alone${round}`);
  const a = aloneCpu();
  const batchId = await submit(client, s.lines, `r${round}`);
  // The worker's first claims and its pace's ramp are not the steady state the leftover is compared with.
  await new Promise((r) => setTimeout(r, 500));
  const before = (await client.batches.retrieve(batchId)).request_counts!.completed;
  const t0 = performance.now();
  const cpu0 = cpuTimeUs(gw.pid);
  const withCpu = watchCpu(gw.pid, targetCpu, loadCpu);
  const withBatch = await interactive(gw.url, rate, seconds, `with${round}`);
  const w = withCpu();
  const done = (await client.batches.retrieve(batchId)).request_counts!.completed;
  const wallS = (performance.now() - t0) / 1000;
  const cpuUsed = cpuTimeUs(gw.pid) - cpu0;
  await client.batches.cancel(batchId).catch(() => undefined);
  await waitFinal(client, batchId, 120_000);
  const linesDone = done - before;
  const cpuPerRequestUs = capacity.cpuPerRequestUs;
  const cpuCapacityPerS = 1e6 / cpuPerRequestUs;
  const binds = cpuCapacityPerS < deploymentCapacityPerS ? 'cpu' : 'deployment';
  const leftoverPerS = Math.max(1, Math.min(cpuCapacityPerS, deploymentCapacityPerS) - rate);
  const batchLinesPerS = linesDone / wallS;
  const r: BatchRound = {
    alone: alone.latency,
    withBatch: withBatch.latency,
    p99RiseMs: withBatch.latency.p99Ms - alone.latency.p99Ms,
    cpuPerRequestUs,
    cpuPerQuietRequestUs: a.targetUs / (rate * seconds),
    // The interactive share at its quiet cost (what it cost alone), so a line is not charged for it.
    cpuPerLineUs: linesDone > 0 ? Math.max(0, cpuUsed - (a.targetUs / a.wallUs) * wallS * 1e6) / linesDone : Number.NaN,
    cpuAlonePct: a.targetPct,
    cpuWithPct: w.targetPct,
    othersOnCpuPct: Math.max(a.othersOnTargetCpuPct, w.othersOnTargetCpuPct),
    batchLinesPerS,
    cpuCapacityPerS,
    leftoverPerS,
    binds,
    leftoverUsed: batchLinesPerS / leftoverPerS,
    gotPerS: capacity.perS,
    cpuLeftoverUsed: (w.targetPct - a.targetPct) / Math.max(1, 100 - a.targetPct),
    gotLeftoverUsed: batchLinesPerS / Math.max(1, Math.min(capacity.perS, deploymentCapacityPerS) - rate),
    failed: alone.failed + withBatch.failed,
  };
  console.log(`bench batch: round ${round + 1}: p99 ${r.alone.p99Ms.toFixed(2)} -> ${r.withBatch.p99Ms.toFixed(2)} ms; ${r.batchLinesPerS.toFixed(0)} lines/s of ${r.leftoverPerS.toFixed(0)} left over (${r.binds}) = ${(r.leftoverUsed * 100).toFixed(0)}%; CPU ${r.cpuAlonePct.toFixed(0)}% -> ${r.cpuWithPct.toFixed(0)}%; others on the CPU ${r.othersOnCpuPct.toFixed(0)}%`);
  return r;
}

function figuresOf(s: PhaseSettings, label: string, rounds: BatchRound[]): BatchFigures {
  const m = (f: (r: BatchRound) => number) => median(rounds.map(f));
  return {
    label,
    slots: s.slots,
    latencyMs: s.latencyMs,
    rate: s.rate,
    lines: s.lines,
    seconds: s.seconds,
    deploymentCapacityPerS: (s.slots * 1000) / s.latencyMs,
    rounds,
    median: {
      aloneP50: m((r) => r.alone.p50Ms),
      aloneP99: m((r) => r.alone.p99Ms),
      withP50: m((r) => r.withBatch.p50Ms),
      withP99: m((r) => r.withBatch.p99Ms),
      p99RiseMs: m((r) => r.p99RiseMs),
      batchLinesPerS: m((r) => r.batchLinesPerS),
      leftoverPerS: m((r) => r.leftoverPerS),
      leftoverUsed: m((r) => r.leftoverUsed),
      gotLeftoverUsed: m((r) => r.gotLeftoverUsed),
      cpuLeftoverUsed: m((r) => r.cpuLeftoverUsed),
      cpuPerRequestUs: m((r) => r.cpuPerRequestUs),
      cpuPerLineUs: m((r) => r.cpuPerLineUs),
    },
  };
}

/** `npm run bench`'s batch phase: this checkout's gateway, BENCH_BATCH_ROUNDS rounds on one process. */
export async function runBatchPhase(): Promise<BatchFigures> {
  const s = phaseSettings();
  pinSelf(s.loadCpu);
  buildIfStale();
  let ok = false;
  try {
    const rounds = await withGateway(s, 'gateway', undefined, async (gw) => {
      const out: BatchRound[] = [];
      for (let round = 0; round < s.rounds; round++) out.push(await measureRound(s, gw, round));
      return out;
    });
    ok = true;
    return figuresOf(s, 'gateway', rounds);
  } finally {
    if (ok && !process.env.BENCH_KEEP) rmSync(s.dir, { recursive: true, force: true });
    else console.log(`bench batch: kept ${s.dir}`);
  }
}

/**
 * BENCH_BASELINE=<revision> (standalone only): that revision's gateway and
 * this checkout's, a fresh process each round, in alternating order, so
 * drift on a shared machine hits both alike.
 */
async function runBatchComparison(revision: string): Promise<BatchFigures[]> {
  const s = phaseSettings();
  pinSelf(s.loadCpu);
  buildIfStale();
  const baselineRoot = prepareBaseline(revision, s.dir);
  const targets = [
    { label: `baseline (${revision})`, name: 'baseline', root: baselineRoot as string | undefined },
    { label: 'gateway', name: 'gateway', root: undefined },
  ];
  const rounds = new Map<string, BatchRound[]>(targets.map((t) => [t.label, []]));
  for (let round = 0; round < s.rounds; round++) {
    for (const t of round % 2 ? [...targets].reverse() : targets) {
      console.log(`bench batch: ${t.label}`);
      rounds.get(t.label)!.push(await withGateway(s, `${t.name}-${round}`, t.root, (gw) => measureRound(s, gw, round)));
    }
  }
  if (!process.env.BENCH_KEEP) rmSync(s.dir, { recursive: true, force: true });
  return targets.map((t) => figuresOf(s, t.label, rounds.get(t.label)!));
}

export function printBatchFigures(f: BatchFigures): void {
  const ms = (v: number) => v.toFixed(2).padStart(8);
  const n = (v: number, w = 7) => v.toFixed(0).padStart(w);
  console.log(`\nbatch phase, ${f.label}: a ${f.lines}-line batch beside ${f.rate} interactive req/s, ${f.rounds.length} round(s) of ${f.seconds} s alone then ${f.seconds} s with the batch`);
  console.log(`  capacity: the deployment ${f.slots} slots / ${f.latencyMs} ms = ${f.deploymentCapacityPerS.toFixed(0)} req/s; the gateway's one core / CPU per request at full load (each round's below; in brackets the quiet window's); left over = the lesser less ${f.rate} req/s; got/s: the closed-loop run's own req/s (what a shared CPU gave the gateway) and the share of that leftover used`);
  console.log(`  round   p50 alone   p99 alone   p50 with   p99 with   p99 rise   lines/s  left over  binds    used  got/s  used   CPU/req µs (quiet)  CPU/line µs  CPU alone  CPU with  CPU used  others`);
  f.rounds.forEach((r, i) => {
    console.log(`  ${String(i + 1).padStart(5)}  ${ms(r.alone.p50Ms)}    ${ms(r.alone.p99Ms)}   ${ms(r.withBatch.p50Ms)}   ${ms(r.withBatch.p99Ms)}   ${ms(r.p99RiseMs)}  ${n(r.batchLinesPerS)}  ${n(r.leftoverPerS, 9)}  ${r.binds.padEnd(10)} ${n(r.leftoverUsed * 100, 3)}%  ${n(r.gotPerS, 5)}  ${n(r.gotLeftoverUsed * 100, 3)}%  ${n(r.cpuPerRequestUs, 11)} ${`(${r.cpuPerQuietRequestUs.toFixed(0)})`.padStart(8)}  ${n(r.cpuPerLineUs, 11)}  ${n(r.cpuAlonePct, 8)}%  ${n(r.cpuWithPct, 7)}%  ${n(r.cpuLeftoverUsed * 100, 7)}%  ${n(r.othersOnCpuPct, 5)}%`);
  });
  const md = f.median;
  console.log(`  median ${ms(md.aloneP50)}    ${ms(md.aloneP99)}   ${ms(md.withP50)}   ${ms(md.withP99)}   ${ms(md.p99RiseMs)}  ${n(md.batchLinesPerS)}  ${n(md.leftoverPerS, 9)}             ${n(md.leftoverUsed * 100, 3)}%         ${n(md.gotLeftoverUsed * 100, 3)}%  ${n(md.cpuPerRequestUs, 11)}           ${n(md.cpuPerLineUs, 11)}                      ${n(md.cpuLeftoverUsed * 100, 7)}%`);
  for (const t of batchTargets(f)) console.log(`  ${t.met ? 'MET    ' : 'NOT MET'}  ${t.target}: ${t.detail}`);
  const failed = f.rounds.reduce((s, r) => s + r.failed, 0);
  if (failed > 0) console.log(`  anomaly: ${failed} interactive requests failed`);
  if (f.rounds.some((r) => r.othersOnCpuPct > 10)) console.log('  anomaly: other processes used the gateway\'s CPU during a round: its figures are noisy (compare within a round)');
}

export function batchTargets(f: BatchFigures): Array<{ target: string; met: boolean; detail: string }> {
  const md = f.median;
  return [
    { target: 'interactive p99 rises < 2 ms with the batch', met: md.p99RiseMs < 2, detail: `median rise ${md.p99RiseMs.toFixed(2)} ms (${md.aloneP99.toFixed(2)} -> ${md.withP99.toFixed(2)} ms)` },
    { target: 'the batch uses >= 80% of the capacity left over', met: md.leftoverUsed >= 0.8, detail: `median ${(md.leftoverUsed * 100).toFixed(0)}% (${md.batchLinesPerS.toFixed(0)} of ${md.leftoverPerS.toFixed(0)} lines/s)` },
  ];
}

if (import.meta.url === `file://${process.argv[1]}`) {
  installCleanup();
  runBench(async () => {
    const baseline = process.env.BENCH_BASELINE;
    const all = baseline ? await runBatchComparison(baseline) : [await runBatchPhase()];
    for (const f of all) printBatchFigures(f);
    finishRun('batch-latest.json', [], [], { batch: all });
  });
}
