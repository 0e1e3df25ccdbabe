// `npm run bench`: the gateway against a bare pass-through proxy, same
// upstream, same load, one after the other. See bench/README.md.
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { printBatchFigures, runBatchPhase } from './batch.js';
import { measure, measureStreams, type StreamFigures, type TargetSpec } from './measure.js';
import { measureMcp, printMcpReport } from './mcp.js';
import { busyCpusBefore, installCleanup, onPath, pinSelf, startServer } from './processes.js';
import { printReport, type Settings } from './report.js';
import { measureWorkload, printWorkload, type WorkloadResult } from './workload.js';
import { baseSettings, buildIfStale, compileChildScripts, DEV_KEY, envNumber, prepareBaseline, RESULTS_DIR, runBench, shippedGateway, writeGatewayConfig } from './setup.js';

const settings: Settings = {
  ...baseSettings(),
  rate: envNumber('BENCH_RATE', 1000),
  ttfbCount: envNumber('BENCH_TTFB_REQUESTS', 200),
  streams: envNumber('BENCH_STREAMS', 128),
  slowChunkMs: envNumber('BENCH_SLOW_CHUNK_MS', 50),
};

function countAuditRecords(dir: string): number {
  if (!existsSync(dir)) return 0;
  let lines = 0;
  // Chain files only: the folder also holds the intent log (intents/) and the index files.
  for (const file of readdirSync(dir)) if (file.endsWith('.jsonl')) lines += readFileSync(join(dir, file), 'utf8').split('\n').filter(Boolean).length;
  return lines;
}

async function main(): Promise<void> {
  installCleanup();
  if (!onPath('wrk')) {
    console.error('bench: wrk is not on the PATH. Install it with:\n\n  apt-get install -y wrk\n');
    process.exit(1);
  }
  if (!onPath('taskset')) {
    console.error('bench: taskset is not on the PATH. Install it with:\n\n  apt-get install -y util-linux\n');
    process.exit(1);
  }
  if (availableParallelism() < 2) throw new Error('the bench needs 2 CPUs: one for the process under test, one for the load');
  const baselineRevision = process.env.BENCH_BASELINE ?? '';
  // A run that hangs anyway is stopped, children included.
  const budgetS = (baselineRevision ? 3 : 2) * (settings.warmupS + 3 * settings.durationS + 60) + 120
    // The MCP phase: direct and gateway paths, alternating rounds.
    + 9 * (settings.warmupS + settings.durationS + 10)
    // The workload phase: two targets aged to BENCH_AGED_REQUESTS (at 250 req/s at worst: a shared, busy machine), and a profiled run.
    + (process.env.BENCH_WORKLOAD === '0' ? 0 : 3 * (settings.warmupS + 3 * settings.durationS + 30) + (2 * envNumber('BENCH_AGED_REQUESTS', 200_000)) / 250);
  setTimeout(() => {
    console.error(`bench: still running after ${budgetS} s, giving up`);
    process.exit(1);
  }, budgetS * 1000).unref();

  pinSelf(settings.loadCpu);
  buildIfStale();
  const script = compileChildScripts();
  // Other work on these CPUs makes every figure noisy: say so in the report.
  const anomalies = await busyCpusBefore([settings.targetCpu, settings.loadCpu]);
  const tmp = mkdtempSync(join(tmpdir(), 'lanegate-bench-'));
  const upstream = (name: string, chunkDelayMs: number, chunks = 20) =>
    startServer({
      name,
      cpu: settings.loadCpu,
      args: [script('fake-upstream'), '--chunk-delay-ms', String(chunkDelayMs), '--stream-chunks', String(chunks)],
      logFile: join(tmp, `${name}.log`),
      readyMessage: 'fake upstream listening',
    });
  const fast = await upstream('upstream', 0);
  // The paced streams last BENCH_STREAM_HOLD_S, long enough for every one of them to open before the first ends, on a loaded machine too.
  const slow = await upstream('slow-upstream', settings.slowChunkMs, Math.max(20, Math.ceil((envNumber('BENCH_STREAM_HOLD_S', 10) * 1000) / Math.max(1, settings.slowChunkMs))));
  const configFile = writeGatewayConfig(tmp, { fastUrl: fast.url, slowUrl: slow.url });
  console.log(`bench: temporary files (config, logs, audit) in ${tmp}`);

  // The shipped providers stay in the config but disabled: the bench never leaves 127.0.0.1.
  const env = { ...process.env, OPENAI_API_KEY: '', ANTHROPIC_API_KEY: '', LOCAL_LLM_KEY: '' };
  const onTarget = (name: string, args: string[], readyMessage: string, logFile: string, extraEnv: Record<string, string> = {}) =>
    startServer({ name, cpu: settings.targetCpu, args, logFile, readyMessage, env: { ...env, ...extraEnv } });
  const bare: TargetSpec = {
    key: 'bare',
    label: 'bare proxy',
    auth: '',
    slowModel: 'bench',
    start: ({ slow: useSlow, logFile }) =>
      onTarget(
        'bare proxy',
        [script('bare-proxy'), '--upstream', useSlow ? slow.url : fast.url, ...(process.env.BENCH_BARE_STREAM_BODY === '1' ? ['--stream-body'] : [])],
        'bare proxy listening',
        logFile,
      ),
  };
  const gateway: TargetSpec = {
    key: 'gateway',
    label: 'gateway',
    auth: `Bearer ${DEV_KEY}`,
    slowModel: 'bench-slow',
    start: ({ logFile }) => {
      const shipped = shippedGateway(configFile);
      return onTarget('gateway', shipped.args, 'lanegate listening', logFile, shipped.env);
    },
  };

  // BENCH_BASELINE: an earlier revision of the gateway, measured the same way
  // in the same run, so "what did this change cost" is a ratio of one run.
  const baselineRoot = baselineRevision ? prepareBaseline(baselineRevision, tmp) : undefined;
  const baselineConfig = baselineRoot ? writeGatewayConfig(tmp, { fastUrl: fast.url, slowUrl: slow.url }, baselineRoot) : '';
  const baseline: TargetSpec | undefined = baselineRoot === undefined ? undefined : {
    key: 'baseline',
    label: `baseline (${baselineRevision})`,
    auth: `Bearer ${DEV_KEY}`,
    slowModel: 'bench-slow',
    start: ({ logFile }) => {
      const shipped = shippedGateway(baselineConfig, baselineRoot);
      return onTarget('baseline gateway', shipped.args, 'lanegate listening', logFile, shipped.env);
    },
  };

  const ctx = { settings, script, tmp, anomalies };
  // BENCH_STREAMS_ONLY=1: only the stream phases (time to first byte, streams held open), bare and gateway alternating over BENCH_ROUNDS rounds.
  if (process.env.BENCH_STREAMS_ONLY === '1') {
    await streamsOnly(ctx, [bare, ...(baseline ? [baseline] : []), gateway]);
    await Promise.all([fast.stop(), slow.stop()]);
    if (process.env.BENCH_KEEP) console.log(`bench: kept ${tmp} (BENCH_KEEP)`);
    else rmSync(tmp, { recursive: true, force: true });
    return;
  }
  // BENCH_WORKLOAD=only runs the issue-O workload phase alone (workload.ts); =0 skips it.
  const workloadMode = process.env.BENCH_WORKLOAD ?? '1';
  let workload: WorkloadResult | undefined;
  if (workloadMode !== '0') workload = await measureWorkload({ ...ctx, env, slowUrl: slow.url });
  if (workload && workloadMode === 'only') {
    await Promise.all([fast.stop(), slow.stop()]);
    printWorkload(workload, settings.rate);
    if (process.env.BENCH_KEEP) console.log(`bench: kept ${tmp} (BENCH_KEEP)`);
    else rmSync(tmp, { recursive: true, force: true });
    return;
  }
  const bareResult = await measure(ctx, bare);
  const baselineResult = baseline ? await measure(ctx, baseline) : undefined;
  const gatewayResult = await measure(ctx, gateway);
  await Promise.all([fast.stop(), slow.stop()]);
  // MCP tools/call, direct and through the gateway (bench/mcp.ts); BENCH_MCP_ROUNDS=0 leaves it out.
  const mcp = envNumber('BENCH_MCP_ROUNDS', 3) > 0 ? await measureMcp({ settings, script, tmp, configFile, anomalies, baselineRoot, baselineRevision: baselineRevision || undefined }) : undefined;

  const audited = countAuditRecords(join(tmp, 'audit'));
  const expected = gatewayResult.sent;
  if (audited < expected) anomalies.push(`the gateway wrote ${audited} audit records for at least ${expected} requests`);
  printReport({
    settings,
    bare: bareResult.figures,
    gateway: gatewayResult.figures,
    baseline: baselineResult && { revision: baselineRevision, figures: baselineResult.figures },
    anomalies,
    raw: { bare: bareResult.raw, gateway: { ...gatewayResult.raw, auditRecords: audited }, baseline: baselineResult?.raw, workload },
    resultsDir: RESULTS_DIR,
  });
  if (workload) printWorkload(workload, settings.rate);
  if (mcp) printMcpReport(mcp, settings);
  // The batch phase (bench/batch.ts): interactive latency beside a 10,000-line batch; BENCH_BATCH=0 skips it.
  if (process.env.BENCH_BATCH !== '0') printBatchFigures(await runBatchPhase());
  if (process.env.BENCH_KEEP) console.log(`bench: kept ${tmp} (BENCH_KEEP)`);
  else rmSync(tmp, { recursive: true, force: true });
}

async function streamsOnly(ctx: Parameters<typeof measureStreams>[0], targets: TargetSpec[]): Promise<void> {
  const rounds = Math.max(1, envNumber('BENCH_ROUNDS', 3));
  const results = new Map<string, StreamFigures[]>(targets.map((t) => [t.label, []]));
  for (let round = 1; round <= rounds; round++) {
    // Alternate the order too, so neither target always runs right after the other.
    const order = round % 2 === 1 ? targets : [...targets].reverse();
    for (const target of order) {
      const figures = await measureStreams(ctx, target, round);
      results.get(target.label)!.push(figures);
      console.log(`bench: round ${round}, ${target.label}: ${JSON.stringify(figures)}`);
    }
  }
  const median = (values: number[]) => {
    const sorted = [...values].sort((a, b) => a - b);
    const mid = Math.floor(sorted.length / 2);
    return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  };
  const keys = ['ttfb_p50_ms', 'ttfb_p99_ms', 'rss_streams_mb', 'max_open'] as const;
  console.log(`\n| median of ${rounds} rounds | ${targets.map((t) => t.label).join(' | ')} |`);
  console.log(`|---|${targets.map(() => '---:').join('|')}|`);
  for (const key of keys) console.log(`| ${key} | ${targets.map((t) => median(results.get(t.label)!.map((f) => f[key])).toFixed(3)).join(' | ')} |`);
  // The gap per round (each round's gateway minus the same round's bare), then its median: the figure the target is about.
  const bareRuns = results.get(targets[0]!.label)!;
  const gatewayRuns = results.get(targets.at(-1)!.label)!;
  const gaps = gatewayRuns.map((g, i) => g.ttfb_p50_ms - bareRuns[i]!.ttfb_p50_ms);
  const gap = median(gaps);
  console.log(`\nstream TTFB (p50) over bare, per round: ${gaps.map((g) => g.toFixed(3)).join(', ')} ms; median ${gap.toFixed(3)} ms (target: within 0.5 ms)`);
  const rss = median(gatewayRuns.map((g) => g.rss_streams_mb));
  console.log(`gateway peak RSS with ${ctx.settings.streams} streams: median ${rss.toFixed(1)} MB (target: under 150 MB)`);
  if (ctx.anomalies.length > 0) console.log(`\nanomalies:\n${ctx.anomalies.map((a) => `- ${a}`).join('\n')}`);
}

runBench(main);
