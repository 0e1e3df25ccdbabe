// Routing's benchmark (issue B), run on its own:
//
//   node --import tsx bench/routing.ts
//
// 1. Rule cost (in this process, no I/O): µs the routeRequest stage takes for
//    a raw model name, for the shipped `auto` route when no rule reached needs
//    token counting (x-gateway-priority: high stops at the first rule), and
//    for a route whose first rule counts the prompt with tiktoken, on 1 KB and
//    100 KB prompts. A fresh context each time, so no count is reused; median
//    of interleaved batches after warm-up, with the cost of building the
//    context measured apart and taken off.
// 2. End to end (same machine layout as `npm run bench`, bench/README.md):
//    wrk at 32 connections against the gateway on the shipped config, the
//    same request sent to the model `bench` directly, through a route of
//    rules that need no tokens, and through a route with a token rule, with
//    1 KB and 100 KB prompts; CPU per request tells what routing adds.
// 3. Outage: the model `bench-outage` has a primary deployment whose port
//    refuses connections and the fake upstream as its fallback;
//    `bench-fallback` is the fallback alone. The open-loop generator sends
//    BENCH_RATE req/s (default 500) to each; after its 2 s warm-up the
//    primary's breaker is open (5 failures in a row), and the measured p99 of
//    requests the fallback served is compared with the fallback's own. The
//    same outage with the breaker disabled shows what the breaker saves.
//
// BENCH_DURATION, BENCH_WARMUP, BENCH_ROUNDS (alternating rounds of part 2,
// default 2), BENCH_TARGET_CPU / BENCH_LOAD_CPU as for `npm run bench`;
// BENCH_KEEP=1 keeps the temporary folder; BENCH_RULES_ONLY=1 runs part 1
// alone. Results also go to bench/results/routing-latest.json.
import { createServer } from 'node:net';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { compileConfig } from '../src/config/compile.js';
import { loadConfig } from '../src/config/load.js';
import { createContext, type RequestContext, type Services } from '../src/pipeline/context.js';
import { createHttpClients } from '../src/providers/http.js';
import { countMessageTokens } from '../src/providers/tokens.js';
import { routeRequest } from '../src/routing/rules.js';
import { createMetrics } from '../src/telemetry/metrics.js';
import type { ChatRequest } from '../src/api/schemas.js';
import { installCleanup, latency, num, onPath, pinSelf, runTool, startServer, watchCpu, type Server } from './processes.js';
import { baseSettings, buildIfStale, compileChildScripts, DEV_KEY, envNumber, finishRun, runBench, shippedGateway, writeGatewayConfig } from './setup.js';
import { wrkChat, type WrkRun } from './wrk.js';

const settings = { ...baseSettings(), rounds: Math.max(1, envNumber('BENCH_ROUNDS', 2)), outageRounds: Math.max(1, envNumber('BENCH_OUTAGE_ROUNDS', 3)), rate: envNumber('BENCH_RATE', 500) };
const AUTH = `Bearer ${DEV_KEY}`;

/**
 * Ordinary English-like text of about `bytes` bytes (tiktoken's cost depends
 * on the text, so not one repeated letter), in lines of 14 words as a
 * document or a chat transcript has them, or as one line.
 */
function prose(bytes: number, lines = true): string {
  const words = ['the', 'gateway', 'routes', 'each', 'request', 'to', 'a', 'cheap', 'or', 'premium', 'model', 'by', 'its', 'value,', 'and', 'counts', 'tokens', 'only', 'when', 'needed.'];
  let out = '';
  for (let i = 0; out.length < bytes; i++) out += `${words[(i * 7 + (i >> 3)) % words.length]}${lines && i % 14 === 13 ? '\n' : ' '}`;
  return out.slice(0, bytes);
}
// A long count stops once it settles the rule, cutting the text between lines:
// a prompt of one 100 KB line has nowhere to cut, and is counted whole.
const PROMPTS = { '1 KB': prose(1024), '100 KB': prose(100 * 1024), '100 KB, one line': prose(100 * 1024, false) } as const;
type PromptSize = keyof typeof PROMPTS;

/** Routes the bench adds: the same choice with and without a rule that needs the prompt's size. */
function benchRoutes(): Record<string, unknown> {
  return {
    'bench-rules': {
      rules: [
        { name: 'high-priority', match: { priority: ['high'] }, model: 'bench' },
        { name: 'structured-output', match: { response_format: ['json_schema'] }, model: 'bench' },
        { name: 'tools', match: { has_tools: true }, model: 'bench' },
        { name: 'everything-else', default: true, model: 'bench' },
      ],
    },
    // The shipped `auto` route's threshold: a 1 KB prompt is settled by its byte count, a 100 KB one is tokenized.
    'bench-tokens': {
      rules: [
        { name: 'long-prompts', match: { min_prompt_tokens: 4000 }, model: 'bench' },
        { name: 'everything-else', default: true, model: 'bench' },
      ],
    },
    // A threshold below the 1 KB prompt's byte count: that prompt is tokenized too.
    'bench-tokens-low': {
      rules: [
        { name: 'long-prompts', match: { min_prompt_tokens: 150 }, model: 'bench' },
        { name: 'everything-else', default: true, model: 'bench' },
      ],
    },
  };
}

function median(samples: number[]): number {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
}

type RuleCase = { name: string; model: string; prompt: PromptSize; headers?: Record<string, string> };
const RULE_CASES: RuleCase[] = [
  { name: 'raw model name (no route)', model: 'bench', prompt: '1 KB' },
  { name: 'shipped `auto`, first rule matches (no token rule reached)', model: 'auto', prompt: '1 KB', headers: { 'x-gateway-priority': 'high' } },
  { name: '4 rules, none needs tokens, default wins', model: 'bench-rules', prompt: '1 KB' },
  { name: 'token rule (min 4,000, as shipped), 1 KB prompt: settled by its bytes', model: 'bench-tokens', prompt: '1 KB' },
  { name: 'token rule (min 150), 1 KB prompt: tokenized on the event loop', model: 'bench-tokens-low', prompt: '1 KB' },
  { name: 'token rule (min 4,000, as shipped), 100 KB prompt: tokenized on the worker thread until settled (wall time; the event loop is free meanwhile)', model: 'bench-tokens', prompt: '100 KB' },
  { name: 'the same, 100 KB prompt of one line: tokenized whole on the worker thread (wall time)', model: 'bench-tokens', prompt: '100 KB, one line' },
];

/**
 * The bench's gateway config (writeGatewayConfig: the shipped config plus the
 * fake upstreams) with the bench routes and the outage models: `bench-outage`
 * tries a port that refuses connections first, then the fast upstream;
 * `bench-outage-no-breaker` is the same with the primary's breaker off;
 * `bench-fallback` is the fallback deployment alone.
 */
function writeRoutingConfig(dir: string, upstreamUrl: string, deadUrl: string): string {
  const file = writeGatewayConfig(dir, { fastUrl: upstreamUrl, slowUrl: upstreamUrl });
  const config = parse(readFileSync(file, 'utf8')) as Record<string, Record<string, unknown>>;
  const dead = { type: 'openai', base_url: `${deadUrl}/v1`, api_key: 'sk-bench-dead' };
  config.providers = { ...config.providers, bench_dead: dead, bench_dead_no_breaker: { ...dead, breaker: { enabled: false } } };
  const fallback = { provider: 'bench_upstream', model: 'bench-upstream' };
  config.models = {
    ...config.models,
    'bench-fallback': { description: 'The outage bench fallback, alone.', deployments: [fallback] },
    'bench-outage': { description: 'A dead primary, then the fallback.', deployments: [{ provider: 'bench_dead', model: 'bench-upstream' }, fallback] },
    'bench-outage-no-breaker': { description: 'The same, with no breaker.', deployments: [{ provider: 'bench_dead_no_breaker', model: 'bench-upstream' }, fallback] },
  };
  config.routes = { ...config.routes, ...benchRoutes() };
  writeFileSync(file, `# Generated by bench/routing.ts.\n${stringify(config)}`);
  return file;
}

const NO_KEYS = { ...process.env, OPENAI_API_KEY: '', ANTHROPIC_API_KEY: '', LOCAL_LLM_KEY: '' };

async function ruleCost(tmp: string): Promise<{ cases: Array<RuleCase & { us: number; tokens: number }>; contextUs: number }> {
  // Nothing is sent in process: the upstream addresses are never dialled.
  const file = writeRoutingConfig(tmp, 'http://127.0.0.1:9', 'http://127.0.0.1:9');
  const loaded = await loadConfig(file, NO_KEYS);
  const clients = createHttpClients();
  const config = compileConfig(loaded.config, loaded.file, clients, loaded.policies, loaded.prompts);
  const services = { metrics: createMetrics({ defaultMetrics: false }) } as unknown as Services;
  const key = [...config.keysByHash.values()][0]!.key;
  const tokens: Record<PromptSize, number> = {
    '1 KB': await countMessageTokens([{ role: 'user', content: PROMPTS['1 KB'] }]),
    '100 KB': await countMessageTokens([{ role: 'user', content: PROMPTS['100 KB'] }]),
    '100 KB, one line': await countMessageTokens([{ role: 'user', content: PROMPTS['100 KB, one line'] }]),
  };
  const fresh = (c: RuleCase): RequestContext => {
    const ctx = createContext({ id: 'bench', endpoint: 'chat', config, services, headers: c.headers ?? {}, readBody: async () => ({}) });
    ctx.key = key;
    ctx.lane = 'green';
    ctx.chat = { model: c.model, messages: [{ role: 'user', content: PROMPTS[c.prompt] }] } as ChatRequest;
    ctx.requestedModel = c.model;
    return ctx;
  };
  for (const c of RULE_CASES) {
    if (c.model !== 'bench' && !config.routes.has(c.model)) throw new Error(`the route ${c.model} is missing from the compiled config`);
  }
  // Batches sized so each takes a few ms whatever the case costs.
  const per = async (c: RuleCase | undefined, batch: number): Promise<number> => {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < batch; i++) {
      const ctx = fresh(c ?? RULE_CASES[0]!);
      if (c) await routeRequest(ctx);
    }
    return Number(process.hrtime.bigint() - t0) / 1000 / batch;
  };
  const batchOf = (c: RuleCase) => (c.prompt.startsWith('100 KB') && c.model.startsWith('bench-tokens') ? 5 : c.model === 'bench-tokens-low' ? 50 : 2000);
  for (let i = 0; i < 5; i++) for (const c of RULE_CASES) await per(c, batchOf(c));
  const samples = RULE_CASES.map(() => [] as number[]);
  const context: number[] = [];
  for (let r = 0; r < 61; r++) {
    const base = await per(undefined, 2000);
    context.push(base);
    for (const [i, c] of RULE_CASES.entries()) samples[i]!.push((await per(c, batchOf(c))) - base);
  }
  await clients.close();
  return { cases: RULE_CASES.map((c, i) => ({ ...c, us: median(samples[i]!), tokens: tokens[c.prompt] })), contextUs: median(context) };
}

/** A local address where nothing listens: connections to it are refused at once. */
async function refusedUrl(): Promise<string> {
  const probe = createServer();
  probe.listen(0, '127.0.0.1');
  await once(probe, 'listening');
  const { port } = probe.address() as { port: number };
  probe.close();
  await once(probe, 'close');
  return `http://127.0.0.1:${port}`;
}

const chatBody = (model: string, prompt: PromptSize) => JSON.stringify({ model, messages: [{ role: 'user', content: `${PROMPTS[prompt]} Request {n}.` }] });
type LoadCase = { key: string; label: string; model: string; prompt: PromptSize };
const LOAD_CASES: LoadCase[] = [
  { key: 'direct-1k', label: '`bench` directly, 1 KB prompt', model: 'bench', prompt: '1 KB' },
  { key: 'rules-1k', label: 'route, 4 rules without tokens, 1 KB', model: 'bench-rules', prompt: '1 KB' },
  { key: 'tokens-1k', label: 'token rule (min 4,000), 1 KB: settled by bytes', model: 'bench-tokens', prompt: '1 KB' },
  { key: 'tokens-low-1k', label: 'token rule (min 150), 1 KB: tokenized', model: 'bench-tokens-low', prompt: '1 KB' },
  { key: 'direct-100k', label: '`bench` directly, 100 KB prompt', model: 'bench', prompt: '100 KB' },
  { key: 'tokens-100k', label: 'token rule (min 4,000), 100 KB: tokenized on the worker', model: 'bench-tokens', prompt: '100 KB' },
];
type OutageCase = { key: string; label: string; model: string };
const OUTAGE_CASES: OutageCase[] = [
  { key: 'fallback', label: 'the fallback alone', model: 'bench-fallback' },
  { key: 'outage', label: 'primary refused, breaker on', model: 'bench-outage' },
  { key: 'outage-no-breaker', label: 'primary refused, breaker off', model: 'bench-outage-no-breaker' },
];

async function post(gateway: Server, body: string): Promise<Response> {
  return fetch(`${gateway.url}/v1/chat/completions`, { method: 'POST', headers: { authorization: AUTH, 'content-type': 'application/json' }, body, signal: AbortSignal.timeout(10_000) });
}

interface LoadResults {
  wrk: Record<string, WrkRun[]>;
  /** Each case's open-loop results, one per round. */
  outage: Record<string, Array<Record<string, unknown>>>;
  servedBy: Record<string, string>;
  breakerOpenAfterWarmup: boolean;
}

async function underLoad(tmp: string, anomalies: string[]): Promise<LoadResults | string> {
  for (const tool of ['wrk', 'taskset']) if (!onPath(tool)) return `${tool} is not on the PATH (apt-get install -y ${tool === 'wrk' ? 'wrk' : 'util-linux'})`;
  if (availableParallelism() < 2) return 'parts 2 and 3 need 2 CPUs';
  pinSelf(settings.loadCpu);
  buildIfStale();
  const script = compileChildScripts();
  const upstream = await startServer({ name: 'upstream', cpu: settings.loadCpu, args: [script('fake-upstream')], logFile: join(tmp, 'upstream.log'), readyMessage: 'fake upstream listening' });
  const configFile = writeRoutingConfig(tmp, upstream.url, await refusedUrl());
  const shipped = shippedGateway(configFile);
  const gateway = await startServer({ name: 'gateway', cpu: settings.targetCpu, args: shipped.args, logFile: join(tmp, 'gateway.log'), readyMessage: 'lanegate listening', env: { ...NO_KEYS, ...shipped.env } });
  try {
    for (const c of LOAD_CASES) {
      const res = await post(gateway, chatBody(c.model, c.prompt).replace('{n}', 'smoke'));
      const text = await res.text();
      if (res.status !== 200) throw new Error(`${c.label}: a request failed before the load (${res.status}): ${text.slice(0, 300)}`);
      if (c.model.startsWith('bench-') && !res.headers.get('x-gateway-route')?.includes('model=bench')) throw new Error(`${c.label}: the route chose ${res.headers.get('x-gateway-route')}`);
    }
    const wrk = (body: string, seconds: number) => wrkChat(gateway, { targetCpu: settings.targetCpu, loadCpu: settings.loadCpu, connections: 32, seconds, body, auth: AUTH });
    if (settings.warmupS > 0) for (const c of LOAD_CASES) await wrk(chatBody(c.model, c.prompt), Math.min(settings.warmupS, 2));
    const runs: Record<string, WrkRun[]> = Object.fromEntries(LOAD_CASES.map((c) => [c.key, []]));
    for (let r = 1; r <= settings.rounds; r++) {
      console.log(`bench: round ${r}: ${LOAD_CASES.length} request kinds, ${settings.durationS} s each at 32 connections`);
      for (const c of LOAD_CASES) {
        const run = await wrk(chatBody(c.model, c.prompt), settings.durationS);
        runs[c.key]!.push(run);
        if (run.failed > 0) anomalies.push(`${c.label}, round ${r}: ${run.failed} failed or non-2xx requests`);
        if (run.cpu.othersOnTargetCpuPct > 10) anomalies.push(`${c.label}, round ${r}: ${run.cpu.othersOnTargetCpuPct.toFixed(0)}% of the gateway's CPU went to other work`);
      }
    }

    // Part 3: which deployment answers, then the open-loop runs.
    const servedBy: Record<string, string> = {};
    for (const c of OUTAGE_CASES) {
      const res = await post(gateway, chatBody(c.model, '1 KB').replace('{n}', 'smoke'));
      await res.text();
      if (res.status !== 200) throw new Error(`${c.label}: ${res.status}`);
      servedBy[c.key] = res.headers.get('x-gateway-deployment') ?? '?';
    }
    // Rounds alternate the cases, so a burst of noise on this machine hits one round of each, not one case.
    const outage: Record<string, Array<Record<string, unknown>>> = Object.fromEntries(OUTAGE_CASES.map((c) => [c.key, []]));
    let breakerOpenAfterWarmup = false;
    for (let r = 1; r <= settings.outageRounds; r++) for (const c of OUTAGE_CASES) {
      console.log(`bench: outage, round ${r}: ${c.label}, ${settings.rate} req/s for ${settings.durationS} s (after 2 s at the same rate)`);
      const stopWatch = watchCpu(gateway.pid, settings.targetCpu, settings.loadCpu);
      const result = await runTool({
        cpu: settings.loadCpu,
        command: process.execPath,
        args: [script('constant-rate'), '--url', `${gateway.url}/v1/chat/completions`, '--rate', String(settings.rate), '--duration', String(settings.durationS), '--warmup', '2', '--body', chatBody(c.model, '1 KB'), '--header', `authorization: ${AUTH}`],
        timeoutMs: (settings.durationS + 40) * 1000,
      });
      const cpu = stopWatch();
      outage[c.key]!.push({ ...result, cpuUsPerRequest: cpu.targetUs / Math.max(1, num(result, 'count')) });
      const failed = num(result, 'errors') + num(result, 'non2xx');
      if (failed > 0) anomalies.push(`outage, ${c.label}: ${failed} failed or non-2xx requests`);
      if (num(result, 'maxSendLagMs') > 5) anomalies.push(`outage, ${c.label}: the generator sent up to ${num(result, 'maxSendLagMs')} ms late`);
      if (c.key === 'outage') {
        const metrics = await (await fetch(`${gateway.url}/metrics`)).text();
        breakerOpenAfterWarmup = /^lanegate_breaker_state\{deployment="bench_dead\/bench-upstream"\} [12]$/m.test(metrics);
      }
    }
    return { wrk: runs, outage, servedBy, breakerOpenAfterWarmup };
  } finally {
    await gateway.stop();
    await upstream.stop();
  }
}

async function main(): Promise<void> {
  installCleanup();
  const tmp = mkdtempSync(join(tmpdir(), 'lanegate-bench-routing-'));
  const anomalies: string[] = [];
  let rules: Awaited<ReturnType<typeof ruleCost>>;
  let load: LoadResults | string;
  try {
    console.log('bench: part 1, rule cost in process');
    rules = await ruleCost(join(mkdtempSync(join(tmp, 'rules-')), ''));
    load = process.env.BENCH_RULES_ONLY ? 'BENCH_RULES_ONLY is set' : await underLoad(tmp, anomalies);
  } finally {
    if (!process.env.BENCH_KEEP) rmSync(tmp, { recursive: true, force: true });
    else console.log(`bench: kept ${tmp}`);
  }
  const f = (x: number, d = 2) => x.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d });
  const targets: Array<{ target: string; met: boolean; detail: string }> = [];

  console.log(`\n| routeRequest in process (median; building the context, ${f(rules.contextUs)} µs, taken off) | prompt tokens | µs per request |\n|---|---:|---:|`);
  for (const c of rules.cases) console.log(`| ${c.name} | ${c.tokens.toLocaleString('en-US')} | ${f(c.us)} |`);

  if (typeof load === 'string') {
    console.log(`\nparts 2 and 3: skipped (${load})`);
  } else {
    const mean = (xs: WrkRun[], g: (x: WrkRun) => number) => xs.reduce((sum, x) => sum + g(x), 0) / xs.length;
    const row = (key: string) => {
      const xs = load.wrk[key]!;
      return { rps: mean(xs, (x) => x.rps), p99: mean(xs, (x) => x.p99Ms), cpuUs: mean(xs, (x) => x.cpuUsPerRequest), cpuPct: mean(xs, (x) => x.cpu.targetPct) };
    };
    console.log(`\n| gateway, wrk 32 connections, ${settings.rounds} × ${settings.durationS} s (mean) | req/s | p99 (ms) | CPU µs per request | vs \`bench\` directly, same prompt |\n|---|---:|---:|---:|---:|`);
    for (const c of LOAD_CASES) {
      const r = row(c.key);
      const base = row(c.prompt === '1 KB' ? 'direct-1k' : 'direct-100k');
      const delta = r.cpuUs - base.cpuUs;
      console.log(`| ${c.label} | ${f(r.rps, 0)} | ${f(r.p99)} | ${f(r.cpuUs, 0)} | ${c.model === 'bench' ? '' : `${delta >= 0 ? '+' : ''}${f(delta, 0)} µs`} |`);
      if (r.cpuPct < 90) anomalies.push(`${c.label}: the gateway used only ${r.cpuPct.toFixed(0)}% of its CPU`);
    }
    // The median of the rounds, and every round's p99.
    const o = (key: string, field: string) => median(load.outage[key]!.map((r) => latency(r, field)));
    console.log(`\n| open loop, ${settings.rate} req/s for ${settings.durationS} s, median of ${settings.outageRounds} rounds | served by | p50 (ms) | p99 (ms) | max (ms) | p99 of each round (ms) | failed |\n|---|---|---:|---:|---:|---|---:|`);
    for (const c of OUTAGE_CASES) {
      const rounds = load.outage[c.key]!;
      const failed = rounds.reduce((sum, r) => sum + num(r, 'errors') + num(r, 'non2xx'), 0);
      console.log(`| ${c.label} (\`${c.model}\`) | ${load.servedBy[c.key]} | ${f(o(c.key, 'p50Ms'))} | ${f(o(c.key, 'p99Ms'))} | ${f(o(c.key, 'maxMs'))} | ${rounds.map((r) => f(latency(r, 'p99Ms'))).join(', ')} | ${failed} |`);
    }
    const gap = o('outage', 'p99Ms') - o('fallback', 'p99Ms');
    targets.push({ target: 'with the primary refused and its breaker open, p99 within 5 ms of the fallback\'s own', met: gap <= 5, detail: `${gap >= 0 ? '+' : ''}${f(gap)} ms` });
    if (!load.breakerOpenAfterWarmup) anomalies.push('the primary\'s breaker was not reported open (lanegate_breaker_state) after the outage run');
  }
  console.log('');
  finishRun('routing-latest.json', targets, anomalies, { settings, rules, load });
}

runBench(main);
