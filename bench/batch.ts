// The batch phase of `npm run bench` (also on its own: node --import tsx bench/batch.ts).
//
// One gateway process (the single-instance default: journal-file queue) in
// front of a mock deployment that answers in BENCH_BATCH_LATENCY_MS and
// admits BENCH_BATCH_SLOTS requests at once: its capacity is slots / latency
// requests a second. Interactive chat requests arrive at a fixed rate
// (open loop, latency from the scheduled send) for BENCH_BATCH_DURATION s,
// first alone, then while a BENCH_BATCH_LINES-line batch drains. Reported:
// interactive p50/p99 without and with the batch, the batch's lines a second
// in that window, and what share of the capacity left over it used.
// Targets (issue M): p99 rises < 2 ms; the batch uses >= 80% of the leftover.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI, { toFile } from 'openai';
import { Pool } from 'undici';
import { hashKey } from '../src/auth/keys.js';
import { summarise, type LatencySummary } from './percentiles.js';
import { envNumber, ROOT } from './setup.js';

const KEY = 'sk-bench-batch-0123456789';

export interface BatchFigures {
  slots: number;
  latencyMs: number;
  rate: number;
  lines: number;
  alone: LatencySummary;
  withBatch: LatencySummary;
  p99RiseMs: number;
  batchLinesPerS: number;
  leftoverPerS: number;
  leftoverUsed: number;
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
queue: { concurrency: ${concurrency}, poll_ms: 5 }
`;
}

async function startGateway(configFile: string): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn(process.execPath, ['bin/lanegate.mjs', 'serve', '--config', configFile], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`gateway did not start:\n${out}`)), 30_000);
    const look = (d: Buffer) => {
      out += d.toString('utf8');
      const m = /"port":(\d+)[^\n]*lanegate listening/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    };
    child.stdout!.on('data', look);
    child.stderr!.on('data', look);
    child.once('exit', () => reject(new Error(`gateway exited:\n${out}`)));
  });
  return { url: `http://127.0.0.1:${port}`, child };
}

/** Open loop: request i is sent at start + i / rate; its latency counts from then. */
async function interactive(url: string, rate: number, seconds: number, tag: string): Promise<LatencySummary> {
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
  if (failed > 0) console.log(`bench batch: ${failed} interactive requests failed`);
  return summarise(latencies);
}

export async function runBatchPhase(): Promise<BatchFigures> {
  const slots = envNumber('BENCH_BATCH_SLOTS', 64);
  const latencyMs = envNumber('BENCH_BATCH_LATENCY_MS', 20);
  const rate = envNumber('BENCH_BATCH_RATE', 200);
  const seconds = envNumber('BENCH_BATCH_DURATION', 5);
  const lines = envNumber('BENCH_BATCH_LINES', 10_000);
  const dir = mkdtempSync(join(tmpdir(), 'lanegate-bench-batch-'));
  const configFile = join(dir, 'gateway.yaml');
  writeFileSync(configFile, config(dir, slots, latencyMs, envNumber('BENCH_BATCH_CONCURRENCY', slots)));
  const gw = await startGateway(configFile);
  try {
    const client = new OpenAI({ apiKey: KEY, baseURL: `${gw.url}/v1`, maxRetries: 0 });
    await interactive(gw.url, rate, 1, 'warmup');
    const alone = await interactive(gw.url, rate, seconds, 'alone');
    const input = Array.from({ length: lines }, (_, i) => JSON.stringify({ custom_id: `l${i}`, method: 'POST', url: '/v1/chat/completions', body: { model: 'bench', messages: [{ role: 'user', content: `line ${i}` }], max_tokens: 16 } })).join('\n');
    const file = await client.files.create({ file: await toFile(Buffer.from(input), 'bench.jsonl'), purpose: 'batch' });
    const batch = await client.batches.create({ input_file_id: file.id, endpoint: '/v1/chat/completions', completion_window: '24h' });
    const before = (await client.batches.retrieve(batch.id)).request_counts!.completed;
    const t0 = performance.now();
    const withBatch = await interactive(gw.url, rate, seconds, 'with');
    const done = (await client.batches.retrieve(batch.id)).request_counts!.completed;
    const batchLinesPerS = (done - before) / ((performance.now() - t0) / 1000);
    const leftoverPerS = (slots * 1000) / latencyMs - rate;
    await client.batches.cancel(batch.id).catch(() => undefined);
    return {
      slots,
      latencyMs,
      rate,
      lines,
      alone,
      withBatch,
      p99RiseMs: withBatch.p99Ms - alone.p99Ms,
      batchLinesPerS,
      leftoverPerS,
      leftoverUsed: batchLinesPerS / leftoverPerS,
    };
  } finally {
    gw.child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
}

export function printBatchFigures(f: BatchFigures): void {
  const ms = (v: number) => v.toFixed(2).padStart(8);
  console.log(`\nbatch phase: ${f.lines}-line batch beside ${f.rate} interactive req/s; mock deployment ${f.slots} slots x ${f.latencyMs} ms = ${(f.slots * 1000) / f.latencyMs} req/s`);
  console.log(`  interactive          p50 ms    p99 ms`);
  console.log(`  alone              ${ms(f.alone.p50Ms)}  ${ms(f.alone.p99Ms)}`);
  console.log(`  with the batch     ${ms(f.withBatch.p50Ms)}  ${ms(f.withBatch.p99Ms)}   (p99 ${f.p99RiseMs >= 0 ? '+' : ''}${f.p99RiseMs.toFixed(2)} ms; target < 2 ms)`);
  console.log(`  batch: ${f.batchLinesPerS.toFixed(0)} lines/s of ${f.leftoverPerS.toFixed(0)} left over = ${(f.leftoverUsed * 100).toFixed(0)}% (target >= 80%)`);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  runBatchPhase().then(printBatchFigures, (err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}
