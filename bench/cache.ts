// The response cache's benchmark, run on its own:
//
//   node --import tsx bench/cache.ts
//
// Same machine layout as `npm run bench` (bench/README.md): the process under
// test on one CPU, the load generators, the zero-latency fake upstream and a
// private redis-server (its own free port, no persistence) on the other. It
// measures, one after the other:
//   - the bare pass-through proxy (bare-proxy.ts) forwarding to the upstream;
//   - the gateway answering cache hits from Redis (the shipped config, its
//     green lane caches `shared`), and the same gateway forwarding requests
//     the cache bypasses, for comparison;
// each with wrk (closed loop, 32 connections: throughput and CPU per request)
// and constant-rate.ts (open loop at BENCH_CACHE_RATE req/s: tail latency).
// The open loop also runs against a fake upstream on the target's CPU,
// answered directly: the floor of what this layout and generator can measure
// (an absolute latency target below it cannot be shown on this machine).
// Every request differs in `user` (never part of a cache key), so the bodies
// are as varied as `npm run bench`'s while the gateway answers from one entry.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parse, stringify } from 'yaml';
import { installCleanup, num, onPath, pinSelf, runTool, startServer, watchCpu, type CpuUsage, type Server } from './processes.js';
import { baseSettings, buildIfStale, compileChildScripts, DEV_KEY, envNumber, finishRun, runBench, shippedGateway, writeGatewayConfig } from './setup.js';
import { wrkChat, type WrkRun } from './wrk.js';

const settings = { ...baseSettings(), rate: envNumber('BENCH_CACHE_RATE', 500) };
// temperature 0: deterministic, so cacheable; `user` carries the counter.
const HIT_BODY = JSON.stringify({ model: 'bench', temperature: 0, user: 'u{n}', messages: [{ role: 'user', content: 'Say hello, cached.' }] });
// No temperature (the provider default of 1) and no seed: the cache bypasses it.
// (The load generators fill in only the first {n}.)
const FORWARD_BODY = JSON.stringify({ model: 'bench', messages: [{ role: 'user', content: 'Say hello, request {n}.' }] });

async function freePort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** A private redis-server on the load CPU; killed with the other children when the bench exits. */
async function startRedis(dir: string): Promise<{ url: string; stop(): Promise<void> }> {
  const port = await freePort();
  const child = spawn('taskset', ['-c', String(settings.loadCpu), 'redis-server', '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], {
    stdio: 'ignore',
  });
  process.on('exit', () => child.kill('SIGKILL'));
  const deadline = Date.now() + 10_000;
  while (!(await ping(port))) {
    if (Date.now() > deadline || child.exitCode !== null) throw new Error('redis-server did not start');
    await sleep(50);
  }
  return {
    url: `redis://127.0.0.1:${port}`,
    async stop() {
      child.kill('SIGTERM');
      await once(child, 'exit');
    },
  };
}

function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(500, () => done(false));
    socket.once('error', () => done(false));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.once('data', (d: Buffer) => done(d.toString('latin1').startsWith('+PONG')));
  });
}

function wrk(server: Server, auth: string, body: string, seconds: number): Promise<WrkRun> {
  return wrkChat(server, { targetCpu: settings.targetCpu, loadCpu: settings.loadCpu, connections: 32, seconds, body, auth });
}

interface OpenLoop {
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  achievedRps: number;
  maxSendLagMs: number;
  failed: number;
  cpu: CpuUsage;
}

async function openLoop(script: string, server: Server, auth: string, body: string): Promise<OpenLoop> {
  const stopWatch = watchCpu(server.pid, settings.targetCpu, settings.loadCpu);
  const result = await runTool({
    cpu: settings.loadCpu,
    command: process.execPath,
    args: [script, '--url', `${server.url}/v1/chat/completions`, '--rate', String(settings.rate), '--duration', String(settings.durationS), '--warmup', '2', '--body', body, ...(auth ? ['--header', `authorization: ${auth}`] : [])],
    timeoutMs: (settings.durationS + 40) * 1000,
  });
  const cpu = stopWatch();
  return {
    cpu,
    p50Ms: num(result, 'p50Ms'),
    p99Ms: num(result, 'p99Ms'),
    maxMs: num(result, 'maxMs'),
    achievedRps: num(result, 'achievedRps'),
    maxSendLagMs: num(result, 'maxSendLagMs'),
    failed: num(result, 'errors') + num(result, 'non2xx'),
  };
}

async function cacheCounts(server: Server): Promise<Record<string, number>> {
  const text = await (await fetch(`${server.url}/metrics`)).text();
  const out: Record<string, number> = {};
  for (const m of text.matchAll(/^lanegate_cache_requests_total\{[^}]*result="(\w+)"[^}]*\} (\d+)/gm)) out[m[1]!] = (out[m[1]!] ?? 0) + Number(m[2]);
  return out;
}

async function main(): Promise<void> {
  installCleanup();
  for (const tool of ['wrk', 'taskset', 'redis-server']) {
    if (!onPath(tool)) throw new Error(`${tool} is not on the PATH (apt-get install -y ${tool === 'taskset' ? 'util-linux' : tool === 'redis-server' ? 'redis-server' : tool})`);
  }
  if (availableParallelism() < 2) throw new Error('the bench needs 2 CPUs: one for the process under test, one for the load');
  const budgetS = 4 * (settings.warmupS + 2 * settings.durationS + 40) + 120;
  setTimeout(() => {
    console.error(`bench: still running after ${budgetS} s, giving up`);
    process.exit(1);
  }, budgetS * 1000).unref();
  pinSelf(settings.loadCpu);
  buildIfStale();
  const script = compileChildScripts();
  const tmp = mkdtempSync(join(tmpdir(), 'lanegate-bench-cache-'));
  console.log(`bench: temporary files in ${tmp}`);
  const log = (what: string) => console.log(`bench: ${what}`);

  const upstream = await startServer({ name: 'upstream', cpu: settings.loadCpu, args: [script('fake-upstream')], logFile: join(tmp, 'upstream.log'), readyMessage: 'fake upstream listening' });
  const redisDir = join(tmp, 'redis');
  mkdirSync(redisDir);
  const redis = await startRedis(redisDir);

  const configFile = writeGatewayConfig(tmp, { fastUrl: upstream.url, slowUrl: upstream.url });
  const config = parse(readFileSync(configFile, 'utf8')) as Record<string, unknown>;
  config.redis = { url: redis.url, key_prefix: 'bench' };
  config.cache = { ...((config.cache as object | undefined) ?? {}), enabled: true };
  // The shipped per-key rate limit (600 req/min) would refuse most forwarded
  // requests; hits never reach it. Budgets stay: forwarded requests pay for them.
  config.rate_limits = [];
  writeFileSync(configFile, `# Generated by bench/cache.ts.\n${stringify(config)}`);
  const env = { ...process.env, OPENAI_API_KEY: '', ANTHROPIC_API_KEY: '', LOCAL_LLM_KEY: '' };

  // 0. The floor: a fake upstream in the target's place, nothing in between.
  const direct = await startServer({ name: 'upstream (direct)', cpu: settings.targetCpu, args: [script('fake-upstream')], logFile: join(tmp, 'direct.log'), readyMessage: 'fake upstream listening' });
  log(`fake upstream answered directly (the floor): open loop at ${settings.rate} req/s`);
  const floorOpen = await openLoop(script('constant-rate'), direct, '', HIT_BODY);
  await direct.stop();

  // 1. The bare proxy.
  const bare = await startServer({ name: 'bare proxy', cpu: settings.targetCpu, args: [script('bare-proxy'), '--upstream', upstream.url], logFile: join(tmp, 'bare.log'), readyMessage: 'bare proxy listening', env });
  if (settings.warmupS > 0) await wrk(bare, '', HIT_BODY, settings.warmupS);
  log(`bare proxy: wrk ${settings.durationS} s at 32 connections`);
  const bareWrk = await wrk(bare, '', HIT_BODY, settings.durationS);
  log(`bare proxy: open loop at ${settings.rate} req/s`);
  const bareOpen = await openLoop(script('constant-rate'), bare, '', HIT_BODY);
  await bare.stop();

  // 2. The gateway: hits from Redis, then forwarded (bypassed) requests.
  const auth = `Bearer ${DEV_KEY}`;
  const shipped = shippedGateway(configFile);
  const gateway = await startServer({ name: 'gateway', cpu: settings.targetCpu, args: shipped.args, logFile: join(tmp, 'gateway.log'), readyMessage: 'lanegate listening', env: { ...env, ...shipped.env } });
  const prime = async () => {
    const res = await fetch(`${gateway.url}/v1/chat/completions`, { method: 'POST', headers: { authorization: auth, 'content-type': 'application/json' }, body: HIT_BODY.replace('{n}', 'prime') });
    await res.text();
    return res.headers.get('x-gateway-cache');
  };
  if ((await prime()) !== 'miss') throw new Error('the first request should have been a cache miss');
  for (let i = 0; i < 100 && (await prime()) !== 'hit'; i++) await sleep(20);
  if ((await prime()) !== 'hit') throw new Error('the cache never answered: is Redis reachable from the gateway?');
  const smoke = await fetch(`${gateway.url}/v1/chat/completions`, { method: 'POST', headers: { authorization: auth, 'content-type': 'application/json' }, body: FORWARD_BODY.replaceAll('{n}', 'smoke') });
  const smokeText = await smoke.text();
  if (smoke.status !== 200 || smoke.headers.get('x-gateway-cache') !== 'bypass') throw new Error(`a forwarded request failed before the load (${smoke.status}, cache ${smoke.headers.get('x-gateway-cache')}): ${smokeText.slice(0, 500)}`);
  if (settings.warmupS > 0) await wrk(gateway, auth, HIT_BODY, settings.warmupS);
  const before = await cacheCounts(gateway);
  log(`gateway, cache hits: wrk ${settings.durationS} s at 32 connections`);
  const hitWrk = await wrk(gateway, auth, HIT_BODY, settings.durationS);
  log(`gateway, cache hits: open loop at ${settings.rate} req/s`);
  const hitOpen = await openLoop(script('constant-rate'), gateway, auth, HIT_BODY);
  const after = await cacheCounts(gateway);
  log(`gateway, forwarded (cache bypassed): wrk ${settings.durationS} s at 32 connections`);
  const fwdWrk = await wrk(gateway, auth, FORWARD_BODY, settings.durationS);
  log(`gateway, forwarded: open loop at ${settings.rate} req/s`);
  const fwdOpen = await openLoop(script('constant-rate'), gateway, auth, FORWARD_BODY);
  await gateway.stop();
  await redis.stop();
  await upstream.stop();

  const hits = (after.hit ?? 0) - (before.hit ?? 0);
  const misses = (after.miss ?? 0) - (before.miss ?? 0);
  const rows: Array<[string, number | string, number | string, number | string, number, (number | string)?]> = [
    ['throughput, 32 connections (req/s)', bareWrk.rps, hitWrk.rps, fwdWrk.rps, 0],
    ['latency p50, 32 connections (ms)', bareWrk.p50Ms, hitWrk.p50Ms, fwdWrk.p50Ms, 2],
    ['latency p99, 32 connections (ms)', bareWrk.p99Ms, hitWrk.p99Ms, fwdWrk.p99Ms, 2],
    ['CPU per request (µs)', bareWrk.cpuUsPerRequest, hitWrk.cpuUsPerRequest, fwdWrk.cpuUsPerRequest, 0],
    ['capacity of one core (req/s)', 1e6 / bareWrk.cpuUsPerRequest, 1e6 / hitWrk.cpuUsPerRequest, 1e6 / fwdWrk.cpuUsPerRequest, 0],
    ['CPU use of the target, 32 connections (%)', bareWrk.cpu.targetPct, hitWrk.cpu.targetPct, fwdWrk.cpu.targetPct, 0],
    ['CPU use of the load CPU, 32 connections (%)', bareWrk.cpu.loadCpuPct, hitWrk.cpu.loadCpuPct, fwdWrk.cpu.loadCpuPct, 0],
    [`latency p50 at ${settings.rate} req/s, open loop (ms)`, bareOpen.p50Ms, hitOpen.p50Ms, fwdOpen.p50Ms, 3, floorOpen.p50Ms],
    [`latency p99 at ${settings.rate} req/s, open loop (ms)`, bareOpen.p99Ms, hitOpen.p99Ms, fwdOpen.p99Ms, 3, floorOpen.p99Ms],
    [`latency max at ${settings.rate} req/s, open loop (ms)`, bareOpen.maxMs, hitOpen.maxMs, fwdOpen.maxMs, 3, floorOpen.maxMs],
    ['failed or non-2xx requests', bareWrk.failed + bareOpen.failed, hitWrk.failed + hitOpen.failed, fwdWrk.failed + fwdOpen.failed, 0],
  ];
  const fmt = (v: number | string, digits: number) => (typeof v === 'string' ? v : v.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits }));
  const table = [
    '| metric | floor: fake upstream, direct | bare proxy | gateway, cache hit (Redis) | gateway, forwarded |',
    '|---|---:|---:|---:|---:|',
    ...rows.map(([label, a, b, c, d, floor]) => `| ${label} | ${floor === undefined ? '' : fmt(floor, d)} | ${fmt(a, d)} | ${fmt(b, d)} | ${fmt(c, d)} |`),
  ].join('\n');
  const targets = [
    { target: 'cache-hit throughput at least the bare proxy\'s (32 connections)', met: hitWrk.rps >= bareWrk.rps, detail: `${hitWrk.rps.toFixed(0)} vs ${bareWrk.rps.toFixed(0)} req/s (${((hitWrk.rps / bareWrk.rps) * 100).toFixed(0)}%)` },
    {
      target: `cache-hit p99 under 2 ms at ${settings.rate} req/s`,
      met: hitOpen.p99Ms < 2,
      detail: `${hitOpen.p99Ms.toFixed(3)} ms (bare proxy ${bareOpen.p99Ms.toFixed(3)} ms; the floor, the fake upstream answered directly, ${floorOpen.p99Ms.toFixed(3)} ms)`,
    },
  ];
  const anomalies: string[] = [];
  if (misses > 0 || hits < hitOpen.achievedRps * settings.durationS) anomalies.push(`the cache answered ${hits} hits and ${misses} misses during the hit runs`);
  if (floorOpen.p99Ms >= 2) anomalies.push(`the floor's p99 is ${floorOpen.p99Ms.toFixed(3)} ms: this machine and generator cannot show a p99 under 2 ms for any server`);
  if (hitOpen.maxSendLagMs > 5 || bareOpen.maxSendLagMs > 5) anomalies.push(`the open-loop generator sent up to ${Math.max(hitOpen.maxSendLagMs, bareOpen.maxSendLagMs)} ms late`);
  const runs = [['bare proxy, wrk', bareWrk], ['bare proxy, open loop', bareOpen], ['hits, wrk', hitWrk], ['hits, open loop', hitOpen], ['forwarded, wrk', fwdWrk], ['forwarded, open loop', fwdOpen]] as const;
  for (const [name, run] of runs) {
    const { othersOnTargetCpuPct: others, busiestOthers } = run.cpu;
    if (others > 10) anomalies.push(`${name}: ${others.toFixed(0)}% of CPU ${settings.targetCpu} went to other work${busiestOthers.length ? ` (busiest: ${busiestOthers.join(', ')})` : ''}: figures are noisy`);
  }
  for (const [name, run] of [['bare', bareWrk], ['hit', hitWrk], ['forwarded', fwdWrk]] as const) {
    if (run.cpu.targetPct < 90) anomalies.push(`${name}: the target used only ${run.cpu.targetPct.toFixed(0)}% of its CPU (load CPU ${run.cpu.loadCpuPct.toFixed(0)}% busy): compare capacity of one core`);
  }
  console.log(`\n${table}\n`);
  finishRun('cache-latest.json', targets, anomalies, { settings, hits, misses, floor: { open: floorOpen }, bare: { wrk: bareWrk, open: bareOpen }, hit: { wrk: hitWrk, open: hitOpen }, forwarded: { wrk: fwdWrk, open: fwdOpen } });
  rmSync(tmp, { recursive: true, force: true });
}

runBench(main);
