// MCP tools/call against a fast Streamable HTTP MCP server (mcp-server.ts),
// direct and through the gateway's /mcp, side by side in one run, at a
// constant rate (open loop: latency from each call's scheduled time). Three
// processes, as in `npm run bench`: the gateway alone on the target CPU, the
// MCP server and the load generator (constant-rate.ts) on the load CPU. The
// two paths alternate for BENCH_MCP_ROUNDS rounds and the report gives each
// round and the medians, since the machine may be shared.
//
// `npm run bench:mcp` runs it alone; `npm run bench` runs it after the chat phases.
//
//   BENCH_MCP_RATE=200 BENCH_DURATION=10 BENCH_MCP_ROUNDS=3 npm run bench:mcp
//   BENCH_BASELINE=<git revision> npm run bench:mcp    (that revision's gateway measured beside this one)
//   BENCH_GATEWAY_FLAGS="--cpu-prof --cpu-prof-dir=/tmp/prof" npm run bench:mcp
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { busyCpusBefore, cpuTimeUs, installCleanup, latency, num, onPath, pinSelf, runTool, startServer, type Server } from './processes.js';
import { baseSettings, buildIfStale, compileChildScripts, DEV_KEY, envNumber, finishRun, prepareBaseline, runBench, shippedGateway, writeGatewayConfig, type ChildScript } from './setup.js';

export interface McpBenchSettings {
  durationS: number;
  warmupS: number;
  targetCpu: number;
  loadCpu: number;
}

export interface McpBenchContext {
  settings: McpBenchSettings;
  script: (name: ChildScript) => string;
  tmp: string;
  /** A gateway config written by writeGatewayConfig; the MCP server is added to a copy of it. */
  configFile: string;
  anomalies: string[];
}

interface PathFigures {
  callsPerS: number;
  p50Ms: number;
  p99Ms: number;
  failed: number;
  /** CPU time of the process that answered the agent (the MCP server direct, the gateway through it) per call, µs: steadier than latency on a shared machine. */
  cpuUsPerCall: number;
}

type PathName = 'direct' | 'baseline' | 'gateway';

export interface McpBenchResult {
  rate: number;
  /** BENCH_BASELINE: the earlier revision measured beside this one, same upstream, same load. */
  baselineRevision?: string;
  rounds: Array<Partial<Record<PathName, PathFigures>>>;
  medians: Partial<Record<PathName, PathFigures>>;
  /** Median over rounds of (gateway − direct) at p50 and p99, in ms. */
  addedP50Ms: number;
  addedP99Ms: number;
}

const HEADERS = ['accept: application/json, text/event-stream', 'mcp-protocol-version: 2025-06-18'];
const callBody = (tool: string) => `{"jsonrpc":"2.0","id":{n},"method":"tools/call","params":{"name":"${tool}","arguments":{"n":1}}}`;

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};

/** One call that must succeed before the load: a refusal or tool error would measure the wrong path. */
async function smokeTest(url: string, tool: string, auth: string): Promise<void> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-06-18', ...(auth ? { authorization: auth } : {}) },
    body: callBody(tool).replace('{n}', '0'),
    signal: AbortSignal.timeout(10_000),
  });
  const text = await res.text();
  if (res.status !== 200 || !text.includes('echo') || text.includes('"isError":true') || text.includes('"error"')) {
    throw new Error(`MCP tools/call of ${tool} at ${url} failed before the load (${res.status}): ${text.slice(0, 500)}`);
  }
}

async function load(ctx: McpBenchContext, rate: number, target: { url: string; tool: string; auth: string; pid: number }): Promise<PathFigures> {
  const { settings } = ctx;
  const { url, tool, auth } = target;
  const cpuBefore = cpuTimeUs(target.pid);
  const headers = auth ? [...HEADERS, `authorization: ${auth}`] : HEADERS;
  const result = await runTool({
    cpu: settings.loadCpu,
    command: process.execPath,
    args: [
      ctx.script('constant-rate'),
      ...['--url', url, '--rate', String(rate), '--duration', String(settings.durationS), '--warmup', String(settings.warmupS), '--connections', '64'],
      ...headers.flatMap((h) => ['--header', h]),
      ...['--body', callBody(tool)],
    ],
    timeoutMs: (settings.warmupS + settings.durationS + 30) * 1000,
  });
  // Per answered call: failed ones did less work, and would flatter the figure.
  const calls = Math.max(1, Math.round(rate * (settings.warmupS + settings.durationS)) - num(result, 'errors') - num(result, 'non2xx'));
  return {
    cpuUsPerCall: Math.round((cpuTimeUs(target.pid) - cpuBefore) / calls),
    callsPerS: num(result, 'achievedRps'),
    p50Ms: latency(result, 'p50Ms'),
    p99Ms: latency(result, 'p99Ms'),
    failed: num(result, 'errors') + num(result, 'non2xx'),
  };
}

/** Starts the MCP server and a gateway that serves it (and a baseline one), measures the paths in turn, stops them. */
export async function measureMcp(ctx: McpBenchContext & { baselineRoot?: string; baselineRevision?: string }): Promise<McpBenchResult> {
  const rate = envNumber('BENCH_MCP_RATE', 200);
  const roundCount = Math.max(1, envNumber('BENCH_MCP_ROUNDS', 3));
  const { settings, tmp } = ctx;
  const upstream = await startServer({ name: 'mcp server', cpu: settings.loadCpu, args: [ctx.script('mcp-server')], logFile: join(tmp, 'mcp-server.log'), readyMessage: 'mcp server listening' });
  const gateways: Server[] = [];
  try {
    const config = parse(readFileSync(ctx.configFile, 'utf8')) as Record<string, unknown>;
    config.mcp_servers = { fast: { url: `${upstream.url}/mcp`, timeout_ms: 5000 } };
    const configFile = join(tmp, 'gateway.mcp.yaml');
    writeFileSync(configFile, `# Generated by bench/mcp.ts.\n${stringify(config)}`);
    const startGateway = async (name: string, root?: string) => {
      const shipped = shippedGateway(configFile, root);
      const env = { ...process.env, OPENAI_API_KEY: '', ANTHROPIC_API_KEY: '', LOCAL_LLM_KEY: '', ...shipped.env };
      const server = await startServer({ name, cpu: settings.targetCpu, args: shipped.args, logFile: join(tmp, `${name.replace(/\W+/g, '-')}.log`), readyMessage: 'lanegate listening', env });
      gateways.push(server);
      return { url: `${server.url}/mcp`, tool: 'fast__echo', auth: `Bearer ${DEV_KEY}`, pid: server.pid };
    };
    const targets: Array<[PathName, { url: string; tool: string; auth: string; pid: number }]> = [['direct', { url: `${upstream.url}/mcp`, tool: 'echo', auth: '', pid: upstream.pid }]];
    if (ctx.baselineRoot) targets.push(['baseline', await startGateway('gateway mcp baseline', ctx.baselineRoot)]);
    targets.push(['gateway', await startGateway('gateway mcp')]);
    for (const [, t] of targets) await smokeTest(t.url, t.tool, t.auth);
    const rounds: McpBenchResult['rounds'] = [];
    for (let i = 0; i < roundCount; i++) {
      const round: McpBenchResult['rounds'][number] = {};
      for (const [name, t] of targets) {
        const figures = await load(ctx, rate, t);
        round[name] = figures;
        if (figures.failed > 0) ctx.anomalies.push(`MCP round ${i + 1}: ${figures.failed} ${name} calls failed`);
      }
      rounds.push(round);
    }
    const medians: McpBenchResult['medians'] = {};
    for (const [name] of targets) {
      const all = rounds.map((r) => r[name]!);
      medians[name] = {
        callsPerS: median(all.map((f) => f.callsPerS)),
        p50Ms: median(all.map((f) => f.p50Ms)),
        p99Ms: median(all.map((f) => f.p99Ms)),
        failed: all.reduce((n, f) => n + f.failed, 0),
        cpuUsPerCall: median(all.map((f) => f.cpuUsPerCall)),
      };
    }
    return {
      rate,
      baselineRevision: ctx.baselineRevision,
      rounds,
      medians,
      addedP50Ms: median(rounds.map((r) => r.gateway!.p50Ms - r.direct!.p50Ms)),
      addedP99Ms: median(rounds.map((r) => r.gateway!.p99Ms - r.direct!.p99Ms)),
    };
  } finally {
    await Promise.all([...gateways.map((g) => g.stop()), upstream.stop()]);
  }
}

export function printMcpReport(r: McpBenchResult, settings: McpBenchSettings): void {
  const row = (name: string, f: PathFigures) =>
    `${name.padEnd(24)} ${String(f.callsPerS).padStart(8)} ${f.p50Ms.toFixed(2).padStart(8)} ${f.p99Ms.toFixed(2).padStart(8)} ${String(f.failed).padStart(7)} ${String(f.cpuUsPerCall).padStart(12)}`;
  console.log(`\nMCP tools/call at ${r.rate}/s, ${settings.durationS} s per path and round, ${r.rounds.length} rounds (gateway, MCP server and load in separate processes)`);
  if (r.baselineRevision) console.log(`baseline: the gateway at ${r.baselineRevision}`);
  console.log(`${'path'.padEnd(24)} ${'calls/s'.padStart(8)} ${'p50 ms'.padStart(8)} ${'p99 ms'.padStart(8)} ${'failed'.padStart(7)} ${'CPU µs/call'.padStart(12)}`);
  r.rounds.forEach((round, i) => {
    for (const [name, f] of Object.entries(round)) console.log(row(`${name}, round ${i + 1}`, f));
  });
  for (const [name, f] of Object.entries(r.medians)) console.log(row(`${name}, median`, f));
  console.log(`gateway adds ${r.addedP50Ms.toFixed(2)} ms at p50, ${r.addedP99Ms.toFixed(2)} ms at p99 (median of the rounds' differences); CPU µs/call is the answering process's`);
}

async function main(): Promise<void> {
  installCleanup();
  if (!onPath('taskset')) {
    console.error('bench: taskset is not on the PATH. Install it with:\n\n  apt-get install -y util-linux\n');
    process.exit(1);
  }
  const settings = baseSettings();
  pinSelf(settings.loadCpu);
  buildIfStale();
  const script = compileChildScripts();
  const anomalies = await busyCpusBefore([settings.targetCpu, settings.loadCpu]);
  const tmp = mkdtempSync(join(tmpdir(), 'lanegate-bench-mcp-'));
  try {
    // No chat traffic in this bench: the providers' URLs are never called.
    const configFile = writeGatewayConfig(tmp, { fastUrl: 'http://127.0.0.1:9', slowUrl: 'http://127.0.0.1:9' });
    const baselineRevision = process.env.BENCH_BASELINE || undefined;
    const baselineRoot = baselineRevision ? prepareBaseline(baselineRevision, tmp) : undefined;
    const result = await measureMcp({ settings, script, tmp, configFile, anomalies, baselineRoot, baselineRevision });
    printMcpReport(result, settings);
    const met = result.addedP50Ms < 1 && result.medians.gateway!.failed === 0;
    finishRun('mcp.json', [{ target: `the gateway adds under 1 ms at p50 at ${result.rate} calls/s`, met, detail: `${result.addedP50Ms.toFixed(2)} ms` }], anomalies, { settings, ...result });
  } finally {
    if (process.env.BENCH_KEEP) console.log(`bench: kept ${tmp} (BENCH_KEEP)`);
    else rmSync(tmp, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) runBench(main);
