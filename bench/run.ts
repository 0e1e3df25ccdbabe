// `npm run bench`: the gateway against a bare pass-through proxy, same
// upstream, same load, one after the other. See bench/README.md.
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { printBatchFigures, runBatchPhase } from './batch.js';
import { measure, type TargetSpec } from './measure.js';
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
  const upstream = (name: string, chunkDelayMs: number) =>
    startServer({
      name,
      cpu: settings.loadCpu,
      args: [script('fake-upstream'), '--chunk-delay-ms', String(chunkDelayMs)],
      logFile: join(tmp, `${name}.log`),
      readyMessage: 'fake upstream listening',
    });
  const fast = await upstream('upstream', 0);
  const slow = await upstream('slow-upstream', settings.slowChunkMs);
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

runBench(main);
