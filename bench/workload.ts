// The workload ("O · performance with governance on"), next to the
// bench's small request: a ~230 B chat request with a system and a user
// message, max_tokens 256 and temperature 0.2 (so no response cache can
// answer it), against a fake upstream answering ~1.3 KB with usage.

import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { agedPhase, type AgedResult } from './aged.js';
import { startServer, type Server } from './processes.js';
import { envNumber, shippedGateway, writeGatewayConfig, DEV_KEY, type ChildScript } from './setup.js';
import { formatSplit, readProfile, splitProfile, type StageShare } from './stages.js';
import { wrkChat } from './wrk.js';

/** The size the fast fake upstream pads its plain answer to (`--answer-bytes`). */
export const ANSWER_BYTES = 1300;

const SYSTEM = 'You are a support assistant for a shop. Answer briefly.';

/** The workload's request body; `{n}` becomes a per-request counter. */
export function workloadBody(model: string, stream = false): string {
  const body = {
    model,
    ...(stream ? { stream } : {}),
    max_tokens: 256,
    temperature: 0.2,
    messages: [
      { role: 'system', content: SYSTEM },
      { role: 'user', content: 'Where is my parcel? Order {n} has not arrived yet.' },
    ],
  };
  return JSON.stringify(body);
}

// The phase: the workload above against a fresh bare proxy and a fresh
// gateway (its own fake upstream answering ~1.3 KB), each measured for
// throughput and CPU per request at 32 connections, then aged (aged.ts); and
// a third, profiled gateway for the CPU split (stages.ts).


export interface WorkloadContext {
  settings: { durationS: number; warmupS: number; targetCpu: number; loadCpu: number; rate: number };
  script: (name: ChildScript) => string;
  tmp: string;
  anomalies: string[];
  /** The environment the targets run in (the shipped providers' keys emptied). */
  env: NodeJS.ProcessEnv;
  slowUrl: string;
}

export interface WorkloadTargetResult {
  rps: number;
  cpuUsPerRequest: number;
  aged: AgedResult;
}

export interface WorkloadResult {
  bare: WorkloadTargetResult;
  gateway: WorkloadTargetResult;
  split: StageShare[];
  profiledCpuUsPerRequest: number;
}

export async function measureWorkload(ctx: WorkloadContext): Promise<WorkloadResult> {
  const { settings, tmp } = ctx;
  const agedRequests = envNumber('BENCH_AGED_REQUESTS', 200_000);
  const heapSnapshots = process.env.BENCH_HEAP_SNAPSHOTS === '1';
  const upstream = await startServer({
    name: 'workload upstream',
    cpu: settings.loadCpu,
    args: [ctx.script('fake-upstream'), '--answer-bytes', String(ANSWER_BYTES)],
    logFile: join(tmp, 'workload-upstream.log'),
    readyMessage: 'fake upstream listening',
  });
  const config = writeGatewayConfig(tmp, { fastUrl: upstream.url, slowUrl: ctx.slowUrl }, undefined, 'gateway.workload.yaml');
  const body = workloadBody('bench');
  const onTarget = (name: string, args: string[], readyMessage: string, env: Record<string, string> = {}) =>
    startServer({ name, cpu: settings.targetCpu, args, logFile: join(tmp, `workload-${name}.log`), readyMessage, env: { ...ctx.env, ...env } });
  const startGateway = (name: string, flags: string[]) => {
    const shipped = shippedGateway(config);
    return onTarget(name, [...flags, ...shipped.args], 'lanegate listening', shipped.env);
  };
  const log = (label: string) => (what: string) => console.log(`bench: workload, ${label}: ${what}`);

  async function run(label: string, server: Server, auth: string, snapshotDir = ''): Promise<WorkloadTargetResult> {
    const wrkOptions = { targetCpu: settings.targetCpu, loadCpu: settings.loadCpu, connections: 32, body, auth };
    log(label)(`warm-up ${settings.warmupS} s, then wrk ${settings.durationS} s at 32 connections`);
    const warm = settings.warmupS > 0 ? await wrkChat(server, { ...wrkOptions, seconds: settings.warmupS }) : undefined;
    const c32 = await wrkChat(server, { ...wrkOptions, seconds: settings.durationS });
    const aged = await agedPhase(server, {
      ...wrkOptions,
      rate: settings.rate,
      durationS: settings.durationS,
      requests: agedRequests,
      constantRate: ctx.script('constant-rate'),
      heapSnapshots,
      served: (warm?.requests ?? 0) + c32.requests,
      log: log(label),
    }, snapshotDir);
    const failed = (warm?.failed ?? 0) + c32.failed + aged.failed;
    if (failed > 0) ctx.anomalies.push(`workload, ${label}: ${failed} failed or non-2xx requests`);
    return { rps: c32.rps, cpuUsPerRequest: c32.cpuUsPerRequest, aged };
  }

  const bareServer = await onTarget('bare', [ctx.script('bare-proxy'), '--upstream', upstream.url], 'bare proxy listening');
  const bare = await run('bare proxy', bareServer, '');
  await bareServer.stop();

  const heapDir = join(tmp, 'heap');
  mkdirSync(heapDir, { recursive: true });
  const gatewayServer = await startGateway('gateway', heapSnapshots ? ['--heapsnapshot-signal=SIGUSR2', `--diagnostic-dir=${heapDir}`] : []);
  const gateway = await run('gateway', gatewayServer, `Bearer ${DEV_KEY}`, heapDir);
  await gatewayServer.stop();

  // The split comes from a separate process: the profiler costs CPU, which must not be in the figures above.
  const profDir = join(tmp, 'prof');
  mkdirSync(profDir, { recursive: true });
  const profiled = await startGateway('gateway-profiled', ['--cpu-prof', `--cpu-prof-dir=${profDir}`]);
  log('profiled gateway')(`warm-up ${settings.warmupS} s, then wrk ${settings.durationS} s at 32 connections under --cpu-prof`);
  const wrkOptions = { targetCpu: settings.targetCpu, loadCpu: settings.loadCpu, connections: 32, body, auth: `Bearer ${DEV_KEY}` };
  if (settings.warmupS > 0) await wrkChat(profiled, { ...wrkOptions, seconds: settings.warmupS });
  const profiledRun = await wrkChat(profiled, { ...wrkOptions, seconds: settings.durationS });
  await profiled.stop();
  await upstream.stop();
  // Only the measured run: start-up (the ledger rebuild, schema compiles) and warm-up are not per-request work.
  const split = splitProfile(readProfile(profDir), profiledRun.cpuUsPerRequest, { lastUs: settings.durationS * 1e6 });
  return { bare, gateway, split, profiledCpuUsPerRequest: profiledRun.cpuUsPerRequest };
}

const fmt = (value: number, digits: number): string =>
  Number.isFinite(value) ? value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits }) : 'n/a';

/** The workload's table, its targets and the CPU split, printed. */
export function printWorkload(w: WorkloadResult, rate: number): void {
  const b = w.bare;
  const g = w.gateway;
  const checkpoints = Object.keys(g.aged.rssMb);
  const first = checkpoints[0] ?? '';
  const last = checkpoints.at(-1) ?? '';
  const rows: Array<[string, number, number, number]> = [
    ['throughput, 32 connections (req/s)', b.rps, g.rps, 0],
    ['CPU per request, 32 connections (µs)', b.cpuUsPerRequest, g.cpuUsPerRequest, 0],
    [`latency p99 at ${rate} req/s, young (after ${Number(first).toLocaleString('en-US')}) (ms)`, b.aged.youngP99Ms, g.aged.youngP99Ms, 2],
    [`latency p99 at ${rate} req/s, aged (after ${g.aged.served.toLocaleString('en-US')}) (ms)`, b.aged.agedP99Ms, g.aged.agedP99Ms, 2],
    ...checkpoints.map((c): [string, number, number, number] => [`RSS after ${Number(c).toLocaleString('en-US')} requests (MB)`, b.aged.rssMb[c] ?? Number.NaN, g.aged.rssMb[c] ?? Number.NaN, 1]),
  ];
  console.log(`\n## The issue's workload (${workloadBody('bench').length} B request with a system and a user message, max_tokens 256, temperature 0.2; ${ANSWER_BYTES} B answer)\n`);
  console.log('| metric | bare proxy | gateway | gateway/bare |\n|---|---:|---:|---:|');
  for (const [label, bv, gv, digits] of rows) console.log(`| ${label} | ${fmt(bv, digits)} | ${fmt(gv, digits)} | ${fmt(gv / bv, 2)}× |`);
  const growth = (g.aged.rssMb[last] ?? Number.NaN) - (g.aged.rssMb[first] ?? Number.NaN);
  const targets = [
    { target: 'throughput >= 50% of bare at 32 connections', met: g.rps >= 0.5 * b.rps, detail: `${fmt((g.rps / b.rps) * 100, 1)}%` },
    { target: `p99 at ${rate} req/s within 2 ms of bare, young`, met: g.aged.youngP99Ms - b.aged.youngP99Ms <= 2, detail: `${fmt(g.aged.youngP99Ms - b.aged.youngP99Ms, 2)} ms over bare` },
    { target: `p99 at ${rate} req/s within 2 ms of bare, aged`, met: g.aged.agedP99Ms - b.aged.agedP99Ms <= 2, detail: `${fmt(g.aged.agedP99Ms - b.aged.agedP99Ms, 2)} ms over bare` },
    { target: `gateway RSS flat within 20 MB from ${first} to ${last} requests`, met: growth <= 20, detail: `${fmt(growth, 1)} MB` },
  ];
  console.log('\n### Workload targets\n');
  for (const t of targets) console.log(`- [${t.met ? 'x' : ' '}] ${t.target}: ${t.detail}${t.met ? '' : ' (NOT MET)'}`);
  console.log(`\n### Gateway CPU per request by module (sampled, --cpu-prof; ${fmt(w.profiledCpuUsPerRequest, 0)} µs per request under the profiler)\n`);
  console.log(formatSplit(w.split).join('\n'));
}
