// Prompt templates' benchmark, run on its own:
//
//   node --import tsx bench/prompts.ts
//
// 1. Render cost (in this process, no I/O): µs the renderPrompt stage adds to
//    a request for the shipped triage@v2 template (reference, pin, canary
//    draw, variable checks, rendering, tools and parameters), median of many
//    batches after warm-up; and what the same stage costs a plain request.
// 2. Throughput (same machine layout as `npm run bench`, bench/README.md):
//    the gateway serving the shipped config, with wrk at 32 connections,
//    alternating template-driven requests (`model: "prompt:triage-bench"`,
//    variables only) and plain requests carrying exactly what the template
//    renders, so the upstream sees the same request either way. Both go to
//    the zero-latency fake upstream; every request differs ({n}), so the
//    response cache never answers. The bench's usual small request is run
//    too, for scale. Skipped when wrk, taskset or a second CPU is missing.
//
// BENCH_DURATION, BENCH_WARMUP, BENCH_ROUNDS (alternating rounds, default 2),
// BENCH_TARGET_CPU / BENCH_LOAD_CPU as for `npm run bench`; BENCH_KEEP=1 keeps
// the temporary folder (config, logs, audit trail); BENCH_RENDER_ONLY=1 runs
// part 1 alone. Results also go to
// bench/results/prompts-latest.json.
import { availableParallelism, tmpdir } from 'node:os';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { compileConfig } from '../src/config/compile.js';
import { loadConfig } from '../src/config/load.js';
import { createContext, type RequestContext, type Services } from '../src/pipeline/context.js';
import { renderPrompt } from '../src/prompts/stage.js';
import { renderMessages } from '../src/prompts/render.js';
import { bindVariables } from '../src/prompts/variables.js';
import { createHttpClients } from '../src/providers/http.js';
import { createMetrics } from '../src/telemetry/metrics.js';
import type { ChatRequest } from '../src/api/schemas.js';
import { installCleanup, onPath, pinSelf, startServer, type Server } from './processes.js';
import { baseSettings, buildIfStale, compileChildScripts, DEV_KEY, envNumber, finishRun, runBench, ROOT, shippedGateway, writeGatewayConfig } from './setup.js';
import { wrkChat, type WrkRun } from './wrk.js';

const settings = { ...baseSettings(), rounds: envNumber('BENCH_ROUNDS', 2) };
const VARIABLES = { ticket: 'Every API call has returned 500 since 09:00, request {n}.', tier: 'enterprise', channel: 'chat', tags: ['api', 'outage'], actions: ['create_ticket'] };

function median(samples: number[]): number {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
}

async function renderCost(): Promise<Record<string, number>> {
  const loaded = await loadConfig(join(ROOT, 'config', 'gateway.yaml'), { ...process.env, OPENAI_API_KEY: '', ANTHROPIC_API_KEY: '', LOCAL_LLM_KEY: '' });
  const clients = createHttpClients();
  const config = compileConfig(loaded.config, loaded.file, clients, loaded.policies, loaded.prompts);
  const services = { metrics: createMetrics({ defaultMetrics: false }) } as unknown as Services;
  const key = [...config.keysByHash.values()][0]!.key;
  let n = 0;
  // A fresh context and body each time, as the parse stage leaves them; their cost is measured apart and taken off.
  const fresh = (template: boolean): RequestContext => {
    const ctx = createContext({ id: 'bench', endpoint: 'chat', config, services, headers: {}, readBody: async () => ({}) });
    ctx.key = key;
    ctx.chat = (
      template
        ? { model: 'prompt:triage', messages: [], variables: { ...VARIABLES, ticket: `Every API call has returned 500 since 09:00, request ${n++}.` } }
        : { model: 'fast', messages: [{ role: 'user', content: `Say hello, request ${n++}.` }] }
    ) as ChatRequest;
    ctx.requestedModel = ctx.chat.model;
    return ctx;
  };
  const template = config.prompts.templates.get('triage')!.get('v2')!;
  const bindAndRender = () => {
    const bound = bindVariables(template.variables, VARIABLES);
    if (bound.ok) renderMessages(template, bound.values);
  };
  // Interleaved batches, so drift on a busy machine lands on all three alike;
  // the stage's cost is each run's difference to the context-only batch.
  const batch = 2000;
  const runs = 151;
  const per = (fn: () => void) => {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < batch; i++) fn();
    return Number(process.hrtime.bigint() - t0) / 1000 / batch;
  };
  const onlyContext = () => void fresh(true);
  const withTemplate = () => renderPrompt(fresh(true));
  const withoutTemplate = () => renderPrompt(fresh(false));
  for (let i = 0; i < 20; i++) [onlyContext, withTemplate, withoutTemplate, bindAndRender].forEach(per);
  const samples = { template: [] as number[], plain: [] as number[], bind: [] as number[], context: [] as number[] };
  for (let r = 0; r < runs; r++) {
    const base = per(onlyContext);
    samples.context.push(base);
    samples.template.push(per(withTemplate) - base);
    // A plain request builds a smaller body; its own context-only batch is measured too.
    samples.plain.push(per(withoutTemplate) - per(() => void fresh(false)));
    samples.bind.push(per(bindAndRender));
  }
  await clients.close();
  return {
    contextOnlyUs: median(samples.context),
    // What the stage adds to a template-driven request, and to a plain one.
    templateStageUs: median(samples.template),
    plainStageUs: median(samples.plain),
    bindAndRenderUs: median(samples.bind),
  };
}

function wrk(server: Server, body: string, seconds: number): Promise<WrkRun> {
  return wrkChat(server, { targetCpu: settings.targetCpu, loadCpu: settings.loadCpu, connections: 32, seconds, body, auth: `Bearer ${DEV_KEY}` });
}

async function throughput(tmp: string): Promise<{ template: WrkRun[]; plain: WrkRun[]; small: WrkRun[] } | string> {
  if (process.env.BENCH_RENDER_ONLY) return 'BENCH_RENDER_ONLY is set';
  for (const tool of ['wrk', 'taskset']) if (!onPath(tool)) return `${tool} is not on the PATH`;
  if (availableParallelism() < 2) return 'the throughput part needs 2 CPUs';
  pinSelf(settings.loadCpu);
  buildIfStale();
  const script = compileChildScripts();
  const upstream = await startServer({ name: 'upstream', cpu: settings.loadCpu, args: [script('fake-upstream')], logFile: join(tmp, 'upstream.log'), readyMessage: 'fake upstream listening' });
  const configFile = writeGatewayConfig(tmp, { fastUrl: upstream.url, slowUrl: upstream.url });

  // The shipped prompts plus a copy of triage@v2 that answers from the bench upstream.
  const prompts = join(tmp, 'prompts');
  cpSync(join(ROOT, 'config', 'prompts'), prompts, { recursive: true });
  mkdirSync(join(prompts, 'triage-bench'));
  const v2 = readFileSync(join(ROOT, 'config', 'prompts', 'triage', 'v2.yaml'), 'utf8').replace(/^model: fast\b/m, 'model: bench');
  writeFileSync(join(prompts, 'triage-bench', 'v1.yaml'), v2);
  writeFileSync(join(prompts, 'pins.yaml'), `${readFileSync(join(prompts, 'pins.yaml'), 'utf8')}\ntriage-bench: v1\n`);
  const config = parse(readFileSync(configFile, 'utf8')) as Record<string, unknown>;
  config.prompts = { ...(config.prompts as object), dir: prompts };
  writeFileSync(configFile, `# Generated by bench/prompts.ts.\n${stringify(config)}`);

  const env = { ...process.env, OPENAI_API_KEY: '', ANTHROPIC_API_KEY: '', LOCAL_LLM_KEY: '' };
  const shipped = shippedGateway(configFile);
  const gateway = await startServer({ name: 'gateway', cpu: settings.targetCpu, args: shipped.args, logFile: join(tmp, 'gateway.log'), readyMessage: 'lanegate listening', env: { ...env, ...shipped.env } });
  const templateBody = JSON.stringify({ model: 'prompt:triage-bench', messages: [], variables: VARIABLES });
  // The plain twin: what the template renders, sent as is.
  const admin = await fetch(`${gateway.url}/admin/prompts/triage-bench/v1`, { headers: { authorization: 'Bearer lg-admin-dev-change-me' } });
  if (admin.status !== 200) throw new Error(`GET /admin/prompts/triage-bench/v1: ${admin.status} ${await admin.text()}`);
  const { parameters, tools } = (await admin.json()) as { parameters: Record<string, unknown>; tools: string[] };
  const smoke = await fetch(`${gateway.url}/v1/chat/completions`, { method: 'POST', headers: { authorization: `Bearer ${DEV_KEY}`, 'content-type': 'application/json' }, body: templateBody.replace('{n}', 'smoke') });
  if (smoke.status !== 200 || smoke.headers.get('x-gateway-prompt-version') !== 'triage-bench@v1') throw new Error(`a template request failed before the load (${smoke.status}): ${(await smoke.text()).slice(0, 300)}`);
  await smoke.text();
  const toolDefs = tools.map((ref) => {
    const [name, version] = ref.split('@') as [string, string];
    return { type: 'function', function: JSON.parse(readFileSync(join(ROOT, 'config', 'tools', name, `${version}.json`), 'utf8')) as unknown };
  });
  const loaded = await loadConfig(configFile, env);
  const template = loaded.prompts.templates.get('triage-bench')!.get('v1')!;
  const bound = bindVariables(template.variables, VARIABLES);
  if (!bound.ok) throw new Error('the bench variables do not fit the template');
  const plainBody = JSON.stringify({ model: 'bench', messages: renderMessages(template, bound.values), tools: toolDefs, ...parameters });

  // The bench's usual small request (npm run bench), for scale.
  const smallBody = JSON.stringify({ model: 'bench', messages: [{ role: 'user', content: 'Say hello, request {n}.' }] });
  if (settings.warmupS > 0) {
    await wrk(gateway, plainBody, settings.warmupS);
    await wrk(gateway, templateBody, settings.warmupS);
  }
  const out = { template: [] as WrkRun[], plain: [] as WrkRun[], small: [] as WrkRun[] };
  // Alternating, so drift (thermal, other load) hits all alike.
  for (let r = 0; r < settings.rounds; r++) {
    console.log(`bench: round ${r + 1}: plain, template-driven, small plain, ${settings.durationS} s each`);
    out.plain.push(await wrk(gateway, plainBody, settings.durationS));
    out.template.push(await wrk(gateway, templateBody, settings.durationS));
    out.small.push(await wrk(gateway, smallBody, settings.durationS));
  }
  await gateway.stop();
  await upstream.stop();
  return out;
}

async function main(): Promise<void> {
  installCleanup();
  const render = await renderCost();
  const tmp = mkdtempSync(join(tmpdir(), 'lanegate-bench-prompts-'));
  let load: Awaited<ReturnType<typeof throughput>>;
  try {
    load = await throughput(tmp);
  } finally {
    if (!process.env.BENCH_KEEP) rmSync(tmp, { recursive: true, force: true });
    else console.log(`bench: kept ${tmp}`);
  }

  const f = (x: number, d = 2) => x.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d });
  console.log('\n| render cost (in process, median) | µs |\n|---|---:|');
  console.log(`| renderPrompt, template-driven request (triage@v2: 5 variables, 2 sections, 1 tool) | ${f(render.templateStageUs!)} |`);
  console.log(`| renderPrompt, plain request (no template named) | ${render.plainStageUs! < 0.05 ? 'under 0.05 (within noise)' : f(render.plainStageUs!, 3)} |`);
  console.log(`| of which: checking variables and rendering messages | ${f(render.bindAndRenderUs!)} |`);
  const targets: Array<{ target: string; met: boolean; detail: string }> = [
    { target: 'rendering a pinned template adds under 50 µs per request', met: render.templateStageUs! < 50, detail: `${f(render.templateStageUs!)} µs` },
  ];
  type Row = { rps: number; p50: number; p99: number; cpuUs: number; cpuPct: number; failed: number };
  let summary: { plain: Row; template: Row; small: Row } | undefined;
  const anomalies: string[] = [];
  if (typeof load === 'string') {
    console.log(`\nthroughput: skipped (${load})`);
  } else {
    const mean = (xs: WrkRun[], f: (x: WrkRun) => number) => xs.reduce((sum, x) => sum + f(x), 0) / xs.length;
    const row = (xs: WrkRun[]) => ({ rps: mean(xs, (x) => x.rps), p50: mean(xs, (x) => x.p50Ms), p99: mean(xs, (x) => x.p99Ms), cpuUs: mean(xs, (x) => x.cpuUsPerRequest), cpuPct: mean(xs, (x) => x.cpu.targetPct), failed: xs.reduce((sum, x) => sum + x.failed, 0) });
    summary = { plain: row(load.plain), template: row(load.template), small: row(load.small) };
    const { plain, template, small } = summary;
    const ratio = template.rps / plain.rps;
    console.log(`\n| gateway, wrk 32 connections, ${settings.rounds} × ${settings.durationS} s each | plain, the rendered request sent as is | template-driven (variables only) | small plain request (npm run bench's) |\n|---|---:|---:|---:|`);
    console.log(`| throughput (req/s) | ${f(plain.rps, 0)} | ${f(template.rps, 0)} | ${f(small.rps, 0)} |`);
    console.log(`| latency p50 (ms) | ${f(plain.p50)} | ${f(template.p50)} | ${f(small.p50)} |`);
    console.log(`| latency p99 (ms) | ${f(plain.p99)} | ${f(template.p99)} | ${f(small.p99)} |`);
    console.log(`| CPU per request (µs) | ${f(plain.cpuUs, 0)} | ${f(template.cpuUs, 0)} | ${f(small.cpuUs, 0)} |`);
    console.log(`| CPU use of the target (%) | ${f(plain.cpuPct, 0)} | ${f(template.cpuPct, 0)} | ${f(small.cpuPct, 0)} |`);
    console.log(`| failed or non-2xx | ${plain.failed} | ${template.failed} | ${small.failed} |`);
    targets.push({ target: 'a template-driven request is within 5% of a plain one in throughput (same upstream request)', met: ratio >= 0.95, detail: `${(ratio * 100).toFixed(1)}% of plain` });
    for (const [name, r] of Object.entries(summary)) if (r.cpuPct < 90) anomalies.push(`${name}: the target used only ${r.cpuPct.toFixed(0)}% of its CPU: compare CPU per request`);
    if (plain.failed + template.failed + small.failed > 0) anomalies.push('some requests failed (see the table)');
  }
  console.log('');
  finishRun('prompts-latest.json', targets, anomalies, { settings, render, load: typeof load === 'string' ? { skipped: load } : load, summary });
}

runBench(main);
