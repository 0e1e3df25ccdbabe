// `node --import tsx bench/workload-ab.ts`: the workload (workload.ts)
// at 32 connections against the bare proxy, this checkout's gateway and, with
// BENCH_BASELINE=<revision>, that revision's gateway, in alternating wrk
// rounds (BENCH_ROUNDS, default 3; every other round in reverse order). Each
// round prints throughput and CPU per request of each target and the
// gateways' throughput relative to the bare proxy's in that round; the end
// prints the medians. For measuring a CPU change on a busy machine: a ratio
// within one round is what other work on the machine disturbs least. No aged
// phase, no profile (see `BENCH_WORKLOAD=only npm run bench` for those).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { installCleanup, pinSelf, startServer, type Server } from './processes.js';
import { baseSettings, buildIfStale, compileChildScripts, DEV_KEY, envNumber, prepareBaseline, runBench, shippedGateway, writeGatewayConfig } from './setup.js';
import { ANSWER_BYTES, workloadBody } from './workload.js';
import { wrkChat } from './wrk.js';

const settings = { ...baseSettings(), rounds: envNumber('BENCH_ROUNDS', 3) };

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};

interface Target {
  name: string;
  server: Server;
  auth: string;
  rps: number[];
  cpu: number[];
}

async function main(): Promise<void> {
  installCleanup();
  pinSelf(settings.loadCpu);
  buildIfStale();
  const script = compileChildScripts();
  const tmp = mkdtempSync(join(tmpdir(), 'lanegate-bench-ab-'));
  const revision = process.env.BENCH_BASELINE ?? '';
  const baselineRoot = revision ? prepareBaseline(revision, tmp) : undefined;
  const upstream = await startServer({
    name: 'upstream',
    cpu: settings.loadCpu,
    args: [script('fake-upstream'), '--answer-bytes', String(ANSWER_BYTES)],
    logFile: join(tmp, 'upstream.log'),
    readyMessage: 'fake upstream listening',
  });
  const env = { ...process.env, OPENAI_API_KEY: '', ANTHROPIC_API_KEY: '', LOCAL_LLM_KEY: '' };
  const onTarget = (name: string, args: string[], readyMessage: string, extra: Record<string, string> = {}) =>
    startServer({ name, cpu: settings.targetCpu, args, logFile: join(tmp, `${name}.log`), readyMessage, env: { ...env, ...extra } });
  const gateway = (name: string, root?: string) => {
    const config = writeGatewayConfig(tmp, { fastUrl: upstream.url, slowUrl: upstream.url }, root, `${name}.yaml`);
    const shipped = shippedGateway(config, root);
    return onTarget(name, shipped.args, 'lanegate listening', shipped.env);
  };
  const auth = `Bearer ${DEV_KEY}`;
  const targets: Target[] = [
    { name: 'bare', server: await onTarget('bare', [script('bare-proxy'), '--upstream', upstream.url], 'bare proxy listening'), auth: '', rps: [], cpu: [] },
    ...(baselineRoot ? [{ name: `baseline (${revision})`, server: await gateway('baseline', baselineRoot), auth, rps: [], cpu: [] }] : []),
    { name: 'gateway', server: await gateway('gateway'), auth, rps: [], cpu: [] },
  ];
  const body = workloadBody('bench');
  const wrk = (t: Target, seconds: number) =>
    wrkChat(t.server, { targetCpu: settings.targetCpu, loadCpu: settings.loadCpu, connections: 32, seconds, body, auth: t.auth });
  for (const t of targets) if (settings.warmupS > 0) await wrk(t, settings.warmupS);
  const bare = targets[0]!;
  for (let round = 0; round < settings.rounds; round++) {
    for (const t of round % 2 ? [...targets].reverse() : targets) {
      const run = await wrk(t, settings.durationS);
      if (run.failed > 0) console.log(`ab: ${t.name}: ${run.failed} failed requests`);
      t.rps.push(run.rps);
      t.cpu.push(run.cpuUsPerRequest);
    }
    const line = targets.map((t) => `${t.name} ${t.rps.at(-1)!.toFixed(0)} req/s ${t.cpu.at(-1)!.toFixed(0)} µs` + (t === bare ? '' : ` (${((t.rps.at(-1)! / bare.rps.at(-1)!) * 100).toFixed(1)}% of bare)`));
    console.log(`ab: round ${round + 1}: ${line.join('; ')}`);
  }
  for (const t of targets) await t.server.stop();
  await upstream.stop();
  console.log('\n| target | req/s (median) | CPU µs/request (median) | % of bare, per round | median % of bare |\n|---|---:|---:|---|---:|');
  for (const t of targets) {
    const ratios = t.rps.map((r, i) => (r / bare.rps[i]!) * 100);
    console.log(`| ${t.name} | ${median(t.rps).toFixed(0)} | ${median(t.cpu).toFixed(0)} | ${ratios.map((r) => r.toFixed(1)).join(', ')} | ${median(ratios).toFixed(1)}% |`);
  }
  if (process.env.BENCH_KEEP) console.log(`ab: kept ${tmp}`);
  else rmSync(tmp, { recursive: true, force: true });
}

runBench(main);
