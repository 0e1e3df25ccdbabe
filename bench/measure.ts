// One target's measurements (bare proxy or gateway), each phase bounded in
// time: wrk throughput at 32 and 128 connections with CPU per request, the
// open-loop fixed rate, stream time to first byte, and peak memory with many
// streams open on a fresh process.
import { join } from 'node:path';
import { latency, num, peakRssKb, refusalsInLog, runTool, watchCpu, type CpuUsage, type Server } from './processes.js';
import type { Figures, Settings } from './report.js';
import type { ChildScript } from './setup.js';
import { wrkChat } from './wrk.js';

export interface TargetSpec {
  key: 'bare' | 'gateway' | 'baseline';
  label: string;
  /** The Authorization header value; empty for none. */
  auth: string;
  /** The model to ask for when the slow (paced) upstream must answer. */
  slowModel: string;
  start(options: { slow: boolean; logFile: string }): Promise<Server>;
}

export interface MeasureContext {
  settings: Settings;
  script: (name: ChildScript) => string;
  tmp: string;
  anomalies: string[];
}

// The load generators replace {n} with a per-request counter: every request
// differs, so a response cache could never answer in the upstream's place.
const MESSAGES = [{ role: 'user', content: 'Say hello, request {n}.' }];
export const chatBody = (model: string, stream: boolean): string =>
  JSON.stringify(stream ? { model, stream, messages: MESSAGES } : { model, messages: MESSAGES });

// The same request through the Responses API, translated to the same chat upstream (stored, as clients leave `store` on).
export const responsesBody = (model: string): string => JSON.stringify({ model, input: [{ role: 'user', content: 'Say hello, request {n}.' }] });

// The same request through the Anthropic Messages API, translated to the same chat upstream.
export const messagesBody = (model: string): string => JSON.stringify({ model, max_tokens: 256, messages: [{ role: 'user', content: 'Say hello, request {n}.' }] });

async function smokeTest(server: Server, target: TargetSpec): Promise<void> {
  for (const stream of [false, true]) {
    const res = await fetch(`${server.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(target.auth ? { authorization: target.auth } : {}) },
      body: chatBody('bench', stream).replace('{n}', 'smoke'),
      signal: AbortSignal.timeout(10_000),
    });
    const text = await res.text();
    if (res.status !== 200 || !text.includes(stream ? '[DONE]' : '"choices"')) {
      throw new Error(`${target.label}: a ${stream ? 'streamed' : 'plain'} request failed before the load (${res.status}): ${text.slice(0, 500)}`);
    }
  }
}

interface Phase {
  name: string;
  failed: number;
  cpu: CpuUsage;
  result: Record<string, unknown>;
}

async function wrk(ctx: MeasureContext, server: Server, target: TargetSpec, connections: number, seconds: number) {
  const { targetCpu, loadCpu } = ctx.settings;
  const run = await wrkChat(server, { targetCpu, loadCpu, connections, seconds, body: chatBody('bench', false), auth: target.auth });
  const phase: Phase = { name: `wrk ${connections} connections`, failed: run.failed, cpu: run.cpu, result: run.result };
  return { ...run, phase };
}

async function nodeTool(ctx: MeasureContext, server: Server, name: string, script: ChildScript, args: string[], timeoutMs: number): Promise<Phase> {
  const stopWatch = watchCpu(server.pid, ctx.settings.targetCpu, ctx.settings.loadCpu);
  const result = await runTool({ cpu: ctx.settings.loadCpu, command: process.execPath, args: [ctx.script(script), ...args], timeoutMs });
  const failed = num(result, 'errors') + (typeof result.non2xx === 'number' ? result.non2xx : 0);
  return { name, failed, cpu: stopWatch(), result };
}

/**
 * The stream phases: time to first byte on `server` (already warm), which is
 * then stopped, and peak memory with `settings.streams` streams open on a
 * fresh process of the same target.
 */
async function measureStreamPhases(ctx: MeasureContext, target: TargetSpec, server: Server, logSuffix = '') {
  const { settings } = ctx;
  const log = (what: string) => console.log(`bench: ${target.label}: ${what}`);
  const authHeader = target.auth ? ['--header', `authorization: ${target.auth}`] : [];
  log(`stream time to first byte, ${settings.ttfbCount} sequential streams`);
  const ttfb = await nodeTool(ctx, server, 'stream TTFB', 'stream-probe',
    ['ttfb', '--url', `${server.url}/v1/chat/completions`, '--count', String(settings.ttfbCount), '--body', chatBody('bench', true), ...authHeader], 130_000);
  const rssAfterLoadKb = peakRssKb(server.pid);
  await server.stop();

  log(`peak memory, ${settings.streams} streams open at once on a fresh process`);
  const fresh = await target.start({ slow: true, logFile: join(ctx.tmp, `${target.key}-streams${logSuffix}.log`) });
  const hold = await nodeTool(ctx, fresh, `${settings.streams} streams`, 'stream-probe',
    ['hold', '--url', `${fresh.url}/v1/chat/completions`, '--streams', String(settings.streams), '--body', chatBody(target.slowModel, true), ...authHeader], 130_000);
  const rssStreamsKb = peakRssKb(fresh.pid);
  await fresh.stop();
  if (num(hold.result, 'maxOpen') < settings.streams) {
    const { lastOpenedMs, firstEndedMs, firstError } = hold.result;
    const why = firstError ? `; the first failure: ${String(firstError).slice(0, 300)}` : `; the last opened at ${String(lastOpenedMs)} ms, the first ended at ${String(firstEndedMs)} ms`;
    ctx.anomalies.push(`${target.label}: only ${num(hold.result, 'maxOpen')} of ${settings.streams} streams were open at once${why}`);
  }
  return { ttfb, rssAfterLoadKb, fresh, hold, rssStreamsKb };
}

export interface StreamFigures {
  ttfb_p50_ms: number;
  ttfb_p99_ms: number;
  rss_streams_mb: number;
  max_open: number;
}

/**
 * BENCH_STREAMS_ONLY: the stream phases alone (run.ts alternates targets
 * over rounds). The server is warmed with the same wrk warm-up as the full
 * run (`BENCH_WARMUP` s at 32 connections), so the first-byte figure is taken
 * on a process as warm as in the full run.
 */
export async function measureStreams(ctx: MeasureContext, target: TargetSpec, round: number): Promise<StreamFigures> {
  const server = await target.start({ slow: false, logFile: join(ctx.tmp, `${target.key}-${round}.log`) });
  await smokeTest(server, target);
  if (ctx.settings.warmupS > 0) await wrk(ctx, server, target, 32, ctx.settings.warmupS);
  // A log file per round: startServer reads the port from the first ready line in it.
  const { ttfb, hold, rssStreamsKb } = await measureStreamPhases(ctx, target, server, `-${round}`);
  for (const phase of [ttfb, hold]) if (phase.failed > 0) ctx.anomalies.push(`${target.label}, ${phase.name}, round ${round}: ${phase.failed} failed or non-2xx requests`);
  return {
    ttfb_p50_ms: latency(ttfb.result, 'p50Ms'),
    ttfb_p99_ms: latency(ttfb.result, 'p99Ms'),
    rss_streams_mb: (rssStreamsKb * 1024) / 1e6,
    max_open: num(hold.result, 'maxOpen'),
  };
}

export async function measure(ctx: MeasureContext, target: TargetSpec) {
  const { settings, anomalies } = ctx;
  const log = (what: string) => console.log(`bench: ${target.label}: ${what}`);
  const authHeader = target.auth ? ['--header', `authorization: ${target.auth}`] : [];
  const server = await target.start({ slow: false, logFile: join(ctx.tmp, `${target.key}.log`) });
  await smokeTest(server, target);
  const url = `${server.url}/v1/chat/completions`;

  log(`warm-up, ${settings.warmupS} s at 32 connections`);
  const warm = settings.warmupS > 0 ? await wrk(ctx, server, target, 32, settings.warmupS) : undefined;
  log(`wrk, ${settings.durationS} s at 32 connections`);
  const c32 = await wrk(ctx, server, target, 32, settings.durationS);
  // The Responses and Messages ingresses, side by side with chat in the same run (the bare proxy has neither).
  let responses: Awaited<ReturnType<typeof wrkChat>> | undefined;
  let messages: Awaited<ReturnType<typeof wrkChat>> | undefined;
  if (target.key !== 'bare') {
    const ingress = (path: string, body: string) => {
      log(`wrk ${path}, ${settings.durationS} s at 32 connections`);
      return wrkChat(server, { targetCpu: settings.targetCpu, loadCpu: settings.loadCpu, connections: 32, seconds: settings.durationS, body, auth: target.auth, path });
    };
    responses = await ingress('/v1/responses', responsesBody('bench'));
    messages = await ingress('/v1/messages', messagesBody('bench'));
  }
  log(`wrk, ${settings.durationS} s at 128 connections`);
  const c128 = await wrk(ctx, server, target, 128, settings.durationS);
  log(`open loop, ${settings.rate} req/s for ${settings.durationS} s (after 2 s at the same rate)`);
  const fixed = await nodeTool(ctx, server, `${settings.rate} req/s`, 'constant-rate',
    ['--url', url, '--rate', String(settings.rate), '--duration', String(settings.durationS), '--warmup', '2', '--body', chatBody('bench', false), ...authHeader,
      // Kept with the rest of the run: where in time the slow requests were.
      ...(process.env.BENCH_KEEP ? ['--timeline', join(ctx.tmp, `${target.key}-open-loop.tsv`)] : [])],
    (settings.durationS + 40) * 1000);
  const { ttfb, rssAfterLoadKb, fresh, hold, rssStreamsKb } = await measureStreamPhases(ctx, target, server);
  for (const logged of [server, fresh]) {
    const refusals = refusalsInLog(logged.logFile);
    if (refusals.counts.length > 0) anomalies.push(`${target.label} logged failed answers: ${refusals.counts.join(', ')}; the first: ${refusals.example}`);
  }
  const ingressPhases: Phase[] = [];
  if (responses) ingressPhases.push({ name: 'wrk /v1/responses 32 connections', failed: responses.failed, cpu: responses.cpu, result: responses.result });
  if (messages) ingressPhases.push({ name: 'wrk /v1/messages 32 connections', failed: messages.failed, cpu: messages.cpu, result: messages.result });
  const phases = [c32.phase, ...ingressPhases, c128.phase, fixed, ttfb, hold];
  for (const phase of phases) {
    const where = `${target.label}, ${phase.name}`;
    if (phase.failed > 0) anomalies.push(`${where}: ${phase.failed} failed or non-2xx requests`);
    if (phase.cpu.othersOnTargetCpuPct > 10) {
      const who = phase.cpu.busiestOthers.length > 0 ? `; busiest other processes: ${phase.cpu.busiestOthers.join(', ')}` : '';
      anomalies.push(`${where}: ${phase.cpu.othersOnTargetCpuPct.toFixed(0)}% of CPU ${settings.targetCpu} went to other work (other processes, kernel, steal)${who}`);
    }
  }
  for (const run of [c32, c128]) {
    const { targetPct, loadCpuPct, othersOnTargetCpuPct } = run.phase.cpu;
    if (targetPct < 90) {
      const why = loadCpuPct > 90 ? 'the load side limited throughput' : othersOnTargetCpuPct > 10 ? 'other work took its CPU' : 'it waited on something';
      anomalies.push(`${target.label}, ${run.phase.name}: the target used only ${targetPct.toFixed(0)}% of its CPU (load CPU ${loadCpuPct.toFixed(0)}% busy): ${why}`);
    }
  }
  if (num(fixed.result, 'achievedRps') < settings.rate * 0.95) anomalies.push(`${target.label}: the open-loop run achieved only ${num(fixed.result, 'achievedRps')} req/s`);
  if (num(fixed.result, 'maxSendLagMs') > 5) anomalies.push(`${target.label}: the open-loop generator sent up to ${num(fixed.result, 'maxSendLagMs')} ms late (its CPU was busy; the lag counts in the latency)`);

  const figures: Figures = {
    rps_c32: c32.rps,
    p50_c32_ms: c32.p50Ms,
    p99_c32_ms: c32.p99Ms,
    rps_c128: c128.rps,
    p50_c128_ms: c128.p50Ms,
    p99_c128_ms: c128.p99Ms,
    cpu_us_per_req_c32: c32.cpuUsPerRequest,
    cpu_us_per_req_c128: c128.cpuUsPerRequest,
    responses_cpu_us_per_req_c32: responses ? responses.cpuUsPerRequest : Number.NaN,
    messages_cpu_us_per_req_c32: messages ? messages.cpuUsPerRequest : Number.NaN,
    capacity_per_core: 1e6 / c32.cpuUsPerRequest,
    cpu_util_c32: c32.phase.cpu.targetPct,
    fixed_p50_ms: latency(fixed.result, 'p50Ms'),
    fixed_p99_ms: latency(fixed.result, 'p99Ms'),
    fixed_max_ms: latency(fixed.result, 'maxMs'),
    ttfb_p50_ms: latency(ttfb.result, 'p50Ms'),
    ttfb_p99_ms: latency(ttfb.result, 'p99Ms'),
    rss_after_load_mb: (rssAfterLoadKb * 1024) / 1e6,
    rss_streams_mb: (rssStreamsKb * 1024) / 1e6,
    failed_requests: phases.reduce((sum, phase) => sum + phase.failed, 0),
  };
  // A lower bound on what the gateway should have audited (wrk does not count
  // the requests still in flight when it stops).
  const sent = 2 + (warm?.requests ?? 0) + c32.requests + (responses?.requests ?? 0) + (messages?.requests ?? 0) + c128.requests + settings.rate * (settings.durationS + 2) + settings.ttfbCount + 20 + settings.streams;
  const raw = {
    phases: [...(warm ? [{ ...warm.phase, name: 'wrk warm-up' }] : []), ...phases],
    rssAfterLoadKb,
    rssStreamsKb,
  };
  return { figures, raw, sent };
}
