// What the audit trail, metrics and tracing cost, run on its own:
//
//   node --import tsx bench/audit.ts
//
// Same machine layout as `npm run bench` (bench/README.md): the gateway on one
// CPU, wrk, the zero-latency fake upstream, an OTLP/HTTP sink and this
// orchestrator on the other. The gateway runs the shipped config
// (config/gateway.yaml: keys, lanes and policies, routes, access log,
// metrics) in three variants, measured one after the other in one run and in
// rounds (A B C A B C...) so drift hits every variant alike:
//   off   audit.sink: off (metrics stay on: they always are)
//   file  the shipped file sink (the green lane keeps full bodies, hash-chained JSONL)
//   otel  file, plus OpenTelemetry spans exported to a local OTLP/HTTP sink
// Each round: wrk warm-up, then wrk at 32 connections (closed loop:
// throughput, CPU per request). The targets: file within 10% of off,
// otel within 20%, compared by throughput and by CPU per request (the latter
// is what to read when the load CPU, not the gateway, limited throughput).
import { once } from 'node:events';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { installCleanup, onPath, pinSelf, startServer, type Server } from './processes.js';
import { baseSettings, buildIfStale, compileChildScripts, DEV_KEY, envNumber, RESULTS_DIR, runBench, ROOT, shippedGateway, writeGatewayConfig } from './setup.js';
import { wrkChat, type WrkRun } from './wrk.js';

const settings = {
  ...baseSettings(),
  rounds: Math.max(1, envNumber('BENCH_ROUNDS', 2)),
  /** telemetry.sample_ratio of the otel variant: 1 records every request. */
  otelRatio: Math.min(1, envNumber('BENCH_OTEL_SAMPLE_RATIO', 1)),
};
const AUTH = `Bearer ${DEV_KEY}`;
// Every request differs ({n}), as in `npm run bench`; no temperature, so the cache bypasses it.
const BODY = JSON.stringify({ model: 'bench', messages: [{ role: 'user', content: 'Say hello, request {n}.' }] });

type VariantKey = 'off' | 'file' | 'otel';
const ALL_VARIANTS: Array<{ key: VariantKey; label: string }> = [
  { key: 'off', label: 'audit off' },
  { key: 'file', label: 'file sink + metrics' },
  { key: 'otel', label: 'file sink + metrics + OTel export' },
];
// BENCH_VARIANTS=off,file runs only those (audit off is always kept: it is the reference).
const chosen = new Set((process.env.BENCH_VARIANTS ?? 'off,file,otel').split(',').map((v) => v.trim()));
const VARIANTS = ALL_VARIANTS.filter((v) => v.key === 'off' || chosen.has(v.key));


/**
 * Spans in an OTLP protobuf export request: walks resource_spans (1) >
 * scope_spans (2) > spans (2) by their length prefixes, decoding nothing else.
 */
function countSpans(buf: Buffer): number {
  const varint = (at: number): [number, number] => {
    let value = 0;
    for (let shift = 0; ; shift += 7) {
      const b = buf[at++]!;
      value += (b & 0x7f) * 2 ** shift;
      if (b < 0x80) return [value, at];
    }
  };
  // Each message as [start, end); count the `spans` fields two levels down.
  const children = (start: number, end: number, field: number): Array<[number, number]> => {
    const out: Array<[number, number]> = [];
    for (let at = start; at < end; ) {
      const [tag, next] = varint(at);
      const wire = tag & 7;
      if (wire === 2) {
        const [len, body] = varint(next);
        if (tag >>> 3 === field) out.push([body, body + len]);
        at = body + len;
      } else if (wire === 0) at = varint(next)[1];
      else at = next + (wire === 1 ? 8 : 4);
    }
    return out;
  };
  let n = 0;
  for (const [rs, rsEnd] of children(0, buf.length, 1)) for (const [ss, ssEnd] of children(rs, rsEnd, 2)) n += children(ss, ssEnd, 2).length;
  return n;
}

/** A stand-in OTLP/HTTP collector (protobuf, the gateway's default): reads each export and answers 200, counting spans. */
async function startOtlpSink(): Promise<{ url: string; exports: () => number; spans: () => number; bytes: () => number; close(): void }> {
  let exports = 0;
  let spans = 0;
  let bytes = 0;
  const server = createServer((req, res) => {
    const parts: Buffer[] = [];
    req.on('data', (c: Buffer) => parts.push(c));
    req.on('end', () => {
      const body = Buffer.concat(parts);
      bytes += body.length;
      exports++;
      spans += countSpans(body);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{}');
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    exports: () => exports,
    spans: () => spans,
    bytes: () => bytes,
    close: () => server.close(),
  };
}

function variantConfig(base: string, dir: string, key: VariantKey, otlpUrl: string): string {
  const config = parse(readFileSync(base, 'utf8')) as Record<string, Record<string, unknown>>;
  // The shipped development key's rate limit and budget would refuse the load itself.
  delete config.rate_limits;
  delete config.budgets;
  const audit = { ...(config.audit ?? {}), dir: join(dir, `audit-${key}`) };
  config.audit = key === 'off' ? { ...audit, sink: 'off' } : audit;
  config.telemetry = key === 'otel' ? { otlp_endpoint: otlpUrl, service_name: 'lanegate-bench', sample_ratio: settings.otelRatio } : { otlp_endpoint: '' };
  const file = join(dir, `gateway.${key}.yaml`);
  writeFileSync(file, `# Generated by bench/audit.ts.\n${stringify(config)}`);
  return file;
}

function wrk(server: Server, seconds: number): Promise<WrkRun> {
  return wrkChat(server, { targetCpu: settings.targetCpu, loadCpu: settings.loadCpu, connections: 32, seconds, body: BODY, auth: AUTH });
}

function countLines(dir: string): number {
  if (!existsSync(dir)) return 0;
  let n = 0;
  for (const f of readdirSync(dir)) if (f.endsWith('.jsonl')) n += readFileSync(join(dir, f), 'utf8').split('\n').filter(Boolean).length;
  return n;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

async function main(): Promise<void> {
  installCleanup();
  for (const tool of ['wrk', 'taskset']) {
    if (!onPath(tool)) {
      console.error(`bench: ${tool} is not on the PATH. Install it with:\n\n  apt-get install -y ${tool === 'wrk' ? 'wrk' : 'util-linux'}\n`);
      process.exit(1);
    }
  }
  if (availableParallelism() < 2) throw new Error('the bench needs 2 CPUs: one for the gateway, one for the load');
  const budgetS = settings.rounds * VARIANTS.length * (settings.warmupS + settings.durationS + 30) + 120;
  setTimeout(() => {
    console.error(`bench: still running after ${budgetS} s, giving up`);
    process.exit(1);
  }, budgetS * 1000).unref();

  pinSelf(settings.loadCpu);
  try {
    buildIfStale();
  } catch (err) {
    // tsc emits even when it reports errors (work in progress elsewhere in the tree).
    if (!existsSync(join(ROOT, 'dist', 'cli.js'))) throw err;
    console.warn('bench: the build reported type errors (above); benchmarking what tsc emitted');
  }
  const script = compileChildScripts();
  const tmp = mkdtempSync(join(tmpdir(), 'lanegate-bench-audit-'));
  console.log(`bench: temporary files (configs, logs, audit trails) in ${tmp}`);
  const upstream = await startServer({ name: 'upstream', cpu: settings.loadCpu, args: [script('fake-upstream')], logFile: join(tmp, 'upstream.log'), readyMessage: 'fake upstream listening' });
  const sink = await startOtlpSink();
  const base = writeGatewayConfig(tmp, { fastUrl: upstream.url, slowUrl: upstream.url });
  // Whatever else the shipped config names relative to itself (prompts, tool schemas, eval sets) resolves from here too.
  for (const entry of readdirSync(join(ROOT, 'config'))) {
    if (entry !== 'gateway.yaml' && !existsSync(join(tmp, entry))) symlinkSync(join(ROOT, 'config', entry), join(tmp, entry));
  }
  const configs = Object.fromEntries(VARIANTS.map((v) => [v.key, variantConfig(base, tmp, v.key, sink.url)])) as Record<VariantKey, string>;
  const env = { ...process.env, OPENAI_API_KEY: '', ANTHROPIC_API_KEY: '', LOCAL_LLM_KEY: '' };

  const runs: Record<VariantKey, WrkRun[]> = { off: [], file: [], otel: [] };
  const anomalies: string[] = [];
  let audited = 0;
  let auditExpected = 0;
  for (let round = 1; round <= settings.rounds; round++) {
    for (const v of VARIANTS) {
      const logFile = join(tmp, `gateway-${v.key}-${round}.log`);
      const shipped = shippedGateway(configs[v.key]);
      const gateway = await startServer({ name: `gateway (${v.key})`, cpu: settings.targetCpu, args: shipped.args, logFile, readyMessage: 'lanegate listening', env: { ...env, ...shipped.env } });
      const smoke = await fetch(`${gateway.url}/v1/chat/completions`, { method: 'POST', headers: { authorization: AUTH, 'content-type': 'application/json' }, body: BODY.replace('{n}', 'smoke') });
      const text = await smoke.text();
      if (smoke.status !== 200) throw new Error(`${v.label}: a request failed before the load (${smoke.status}): ${text.slice(0, 500)}`);
      console.log(`bench: round ${round}, ${v.label}: warm-up ${settings.warmupS} s, then ${settings.durationS} s at 32 connections`);
      const before = countLines(join(tmp, `audit-${v.key}`));
      if (settings.warmupS > 0) await wrk(gateway, settings.warmupS);
      const spansBefore = sink.spans();
      const run = await wrk(gateway, settings.durationS);
      await gateway.stop(); // SIGTERM: the audit trail is flushed before it exits
      runs[v.key].push(run);
      if (run.failed > 0) anomalies.push(`${v.label}, round ${round}: ${run.failed} failed or non-2xx requests`);
      if (run.cpu.targetPct < 90) anomalies.push(`${v.label}, round ${round}: the gateway used only ${run.cpu.targetPct.toFixed(0)}% of its CPU (load CPU ${run.cpu.loadCpuPct.toFixed(0)}%): compare CPU per request`);
      if (run.cpu.othersOnTargetCpuPct > 10) anomalies.push(`${v.label}, round ${round}: ${run.cpu.othersOnTargetCpuPct.toFixed(0)}% of the gateway's CPU went to other work`);
      if (v.key !== 'off') {
        const written = countLines(join(tmp, `audit-${v.key}`)) - before;
        audited += written;
        auditExpected += run.requests;
        if (written < run.requests) anomalies.push(`${v.label}, round ${round}: ${written} audit records for at least ${run.requests} requests`);
      }
      if (v.key === 'otel') {
        await new Promise((r) => setTimeout(r, 200));
        const exported = sink.spans() - spansBefore;
        if (exported < run.requests * settings.otelRatio * 0.9) anomalies.push(`otel, round ${round}: the sink got ${exported} spans for ${run.requests} requests`);
      }
    }
  }
  await upstream.stop();
  sink.close();

  const summary = Object.fromEntries(
    VARIANTS.map((v) => {
      const r = runs[v.key];
      return [v.key, { rps: median(r.map((x) => x.rps)), p50Ms: median(r.map((x) => x.p50Ms)), p99Ms: median(r.map((x) => x.p99Ms)), cpuUsPerRequest: median(r.map((x) => x.cpuUsPerRequest)), targetCpuPct: median(r.map((x) => x.cpu.targetPct)) }];
    }),
  ) as Partial<Record<VariantKey, { rps: number; p50Ms: number; p99Ms: number; cpuUsPerRequest: number; targetCpuPct: number }>>;

  const off = summary.off!;
  const pct = (x: number, ref: number) => `${x >= ref ? '+' : ''}${(((x - ref) / ref) * 100).toFixed(1)}%`;
  const rows = [
    ['', ...VARIANTS.map((v) => v.label)],
    ['throughput, req/s (median)', ...VARIANTS.map((v) => summary[v.key]!.rps.toFixed(0))],
    ['  vs audit off', ...VARIANTS.map((v) => pct(summary[v.key]!.rps, off.rps))],
    ['latency p50 / p99, ms', ...VARIANTS.map((v) => `${summary[v.key]!.p50Ms.toFixed(2)} / ${summary[v.key]!.p99Ms.toFixed(2)}`)],
    ['CPU per request, µs', ...VARIANTS.map((v) => summary[v.key]!.cpuUsPerRequest.toFixed(0))],
    ['  vs audit off', ...VARIANTS.map((v) => pct(summary[v.key]!.cpuUsPerRequest, off.cpuUsPerRequest))],
    ['capacity of one core, req/s', ...VARIANTS.map((v) => (1e6 / summary[v.key]!.cpuUsPerRequest).toFixed(0))],
    ['gateway CPU use', ...VARIANTS.map((v) => `${summary[v.key]!.targetCpuPct.toFixed(0)}%`)],
  ];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  console.log(
    `\nAudit, metrics and tracing cost (${settings.rounds} round${settings.rounds > 1 ? 's' : ''} of ${settings.durationS} s per variant, 32 connections, CPU ${settings.targetCpu} vs load on CPU ${settings.loadCpu}; OTel sample ratio ${settings.otelRatio})\n`,
  );
  for (const r of rows) console.log(r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('   '));
  console.log('\nTargets:');
  const target = (key: 'file' | 'otel', label: string, floor: number) => {
    const v = summary[key];
    if (!v) return;
    const tput = v.rps / off.rps;
    const capacity = off.cpuUsPerRequest / v.cpuUsPerRequest;
    console.log(`  ${label}: throughput ${(tput * 100).toFixed(1)}%, capacity per core ${(capacity * 100).toFixed(1)}% -> ${tput >= floor ? 'PASS' : 'FAIL'}`);
  };
  target('file', 'file sink + metrics within 10% of audit off', 0.9);
  target('otel', 'OTel exporting within 20% of audit off      ', 0.8);
  console.log(`  audit records written: ${audited} for ${auditExpected} measured requests (plus warm-up); spans exported: ${sink.spans()} in ${sink.exports()} OTLP requests (${(sink.bytes() / 1e6).toFixed(1)} MB)`);
  if (anomalies.length > 0) {
    console.log('\nAnomalies:');
    for (const a of anomalies) console.log(`  - ${a}`);
  }
  mkdirSync(RESULTS_DIR, { recursive: true });
  writeFileSync(join(RESULTS_DIR, 'audit.json'), JSON.stringify({ settings, summary, runs, anomalies, audited, spans: sink.spans() }, null, 2));
  console.log(`\nbench: results in ${join(RESULTS_DIR, 'audit.json')}`);
  rmSync(tmp, { recursive: true, force: true });
}

runBench(main);
