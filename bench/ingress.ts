// `node --import tsx bench/ingress.ts`: only the ingress comparison of
// `npm run bench`, repeated: the same request through /v1/chat/completions,
// /v1/responses and /v1/messages (all to the same chat upstream), in
// alternating wrk rounds on one gateway, with the median CPU per request of
// each and its ratio to chat. For iterating on the ingresses' cost; the full
// bench reports the same ratio from one round.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chatBody, messagesBody, responsesBody } from './measure.js';
import { installCleanup, pinSelf, startServer } from './processes.js';
import { baseSettings, buildIfStale, compileChildScripts, DEV_KEY, envNumber, runBench, shippedGateway, writeGatewayConfig } from './setup.js';
import { wrkChat } from './wrk.js';

const settings = { ...baseSettings(), rounds: envNumber('BENCH_ROUNDS', 3) };

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};

async function main(): Promise<void> {
  installCleanup();
  pinSelf(settings.loadCpu);
  buildIfStale();
  const script = compileChildScripts();
  const tmp = mkdtempSync(join(tmpdir(), 'lanegate-bench-ingress-'));
  const upstream = await startServer({ name: 'upstream', cpu: settings.loadCpu, args: [script('fake-upstream'), '--chunk-delay-ms', '0'], logFile: join(tmp, 'upstream.log'), readyMessage: 'fake upstream listening' });
  const configFile = writeGatewayConfig(tmp, { fastUrl: upstream.url, slowUrl: upstream.url });
  const shipped = shippedGateway(configFile);
  const env = { ...process.env, OPENAI_API_KEY: '', ANTHROPIC_API_KEY: '', LOCAL_LLM_KEY: '', ...shipped.env };
  const gateway = await startServer({ name: 'gateway', cpu: settings.targetCpu, args: shipped.args, logFile: join(tmp, 'gateway.log'), readyMessage: 'lanegate listening', env });
  const auth = `Bearer ${DEV_KEY}`;
  const all = [
    { name: 'chat', path: '/v1/chat/completions', body: chatBody('bench', false) },
    { name: 'responses', path: '/v1/responses', body: responsesBody('bench') },
    { name: 'messages', path: '/v1/messages', body: messagesBody('bench') },
  ] as const;
  // BENCH_INGRESS=responses: only that one (with a CPU profile, say: BENCH_GATEWAY_FLAGS="--cpu-prof --cpu-prof-dir=/tmp/prof").
  const only = process.env.BENCH_INGRESS;
  const kinds = only ? all.filter((k) => k.name === only) : all;
  const wrk = (k: (typeof all)[number], seconds: number) =>
    wrkChat(gateway, { targetCpu: settings.targetCpu, loadCpu: settings.loadCpu, connections: 32, seconds, body: k.body, auth, path: k.path });
  for (const k of kinds) if (settings.warmupS > 0) await wrk(k, settings.warmupS);
  const cpu: Record<string, number[]> = { chat: [], responses: [], messages: [] };
  for (let round = 0; round < settings.rounds; round++) {
    // Every other round in reverse order, so no ingress always runs right after another.
    for (const k of round % 2 ? [...kinds].reverse() : kinds) {
      const run = await wrk(k, settings.durationS);
      if (run.failed > 0) console.log(`ingress: ${k.name}: ${run.failed} failed requests`);
      cpu[k.name]!.push(run.cpuUsPerRequest);
    }
    if (only) continue;
    console.log(`ingress: round ${round + 1}: ${kinds.map((k) => `${k.name} ${cpu[k.name]!.at(-1)!.toFixed(0)} µs`).join(', ')}; ratios ${['responses', 'messages'].map((n) => `${n} ${((cpu[n]!.at(-1)! / cpu.chat!.at(-1)!) * 100).toFixed(1)}%`).join(', ')}`);
  }
  await gateway.stop();
  await upstream.stop();
  if (only) {
    console.log(`ingress: ${only}: ${cpu[only]!.map((v) => v.toFixed(0)).join(', ')} µs per request`);
    return;
  }
  const chat = median(cpu.chat!);
  for (const n of ['responses', 'messages']) {
    const ratios = cpu[n]!.map((v, i) => (v / cpu.chat![i]!) * 100);
    // The least each cost over the rounds is the least disturbed by other work on the machine.
    const least = (Math.min(...cpu[n]!) / Math.min(...cpu.chat!)) * 100;
    console.log(`ingress: ${n}: median ${median(cpu[n]!).toFixed(0)} µs vs chat ${chat.toFixed(0)} µs; per-round ratios ${ratios.map((r) => r.toFixed(1)).join(', ')}%; median ratio ${median(ratios).toFixed(1)}%; ratio of the least ${least.toFixed(1)}%`);
  }
  if (process.env.BENCH_KEEP) console.log(`ingress: kept ${tmp}`);
  else rmSync(tmp, { recursive: true, force: true });
}

runBench(main);
