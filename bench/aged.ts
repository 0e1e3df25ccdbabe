// The aged-process phase: one process serves the workload (see
// workload.ts) at 32 connections until it has answered BENCH_AGED_REQUESTS
// (200,000) requests, with its resident memory read at 10,000 and 50,000
// requests and at the end, and the open-loop p99 at BENCH_RATE measured on the
// young process (after 10,000) and on the aged one. Whatever the process keeps
// per request served shows up as RSS growth and, through longer collections,
// as a worse aged p99.
//
// BENCH_HEAP_SNAPSHOTS=1 also writes a heap snapshot of the gateway at every
// checkpoint (Node's --heapsnapshot-signal; the files land in the run's
// temporary folder, kept with BENCH_KEEP) for comparing what is retained.
import { readdirSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { num, runTool, type Server } from './processes.js';
import { wrkChat } from './wrk.js';

export interface AgedOptions {
  targetCpu: number;
  loadCpu: number;
  rate: number;
  durationS: number;
  /** Requests to serve before the aged measurement. */
  requests: number;
  /** The request body ({n} = counter) and the Authorization header value. */
  body: string;
  auth: string;
  /** The compiled constant-rate.js. */
  constantRate: string;
  /** Sends SIGUSR2 (the gateway runs with --heapsnapshot-signal=SIGUSR2) at each checkpoint. */
  heapSnapshots: boolean;
  /** Requests the process served before this phase (warm-up, earlier runs): they count toward the checkpoints. */
  served: number;
  log: (what: string) => void;
}

export interface AgedResult {
  youngP99Ms: number;
  agedP99Ms: number;
  /** Resident memory (VmRSS, MB) after the checkpoint's requests, by requests served. */
  rssMb: Record<string, number>;
  served: number;
  failed: number;
  raw: Record<string, unknown>;
}

/** Current resident memory of a process, MB. */
export function rssMb(pid: number): number {
  const match = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!match) throw new Error(`no VmRSS in /proc/${pid}/status`);
  return (Number(match[1]) * 1024) / 1e6;
}

async function snapshot(server: Server, dir: string): Promise<void> {
  const before = readdirSync(dir).filter((f) => f.endsWith('.heapsnapshot')).length;
  process.kill(server.pid, 'SIGUSR2');
  // Writing a snapshot stops the process; wait until the file is there and complete.
  for (let i = 0; i < 600; i++) {
    await sleep(500);
    const files = readdirSync(dir).filter((f) => f.endsWith('.heapsnapshot'));
    if (files.length > before) {
      await sleep(2_000);
      return;
    }
  }
}

export async function agedPhase(server: Server, o: AgedOptions, snapshotDir = ''): Promise<AgedResult> {
  let served = o.served;
  let failed = 0;
  let rps = 2_000;
  const rss: Record<string, number> = {};
  const raw: Record<string, unknown> = {};
  const checkpoints = [10_000, 50_000, o.requests].filter((n, i, all) => n <= o.requests && all.indexOf(n) === i);

  async function serveUntil(target: number): Promise<void> {
    while (served < target) {
      const seconds = Math.max(1, Math.min(30, Math.ceil((target - served) / rps)));
      const run = await wrkChat(server, { targetCpu: o.targetCpu, loadCpu: o.loadCpu, connections: 32, seconds, body: o.body, auth: o.auth });
      served += run.requests;
      failed += run.failed;
      rps = Math.max(100, run.rps);
    }
  }
  async function openLoop(name: string): Promise<number> {
    const result = await runTool({
      cpu: o.loadCpu,
      command: process.execPath,
      args: [o.constantRate, '--url', `${server.url}/v1/chat/completions`, '--rate', String(o.rate), '--duration', String(o.durationS), '--warmup', '2',
        '--body', o.body, ...(o.auth ? ['--header', `authorization: ${o.auth}`] : [])],
      timeoutMs: (o.durationS + 40) * 1000,
    });
    served += o.rate * (o.durationS + 2);
    failed += num(result, 'errors') + num(result, 'non2xx');
    raw[name] = result;
    return result.p99Ms === null ? Number.NaN : num(result, 'p99Ms');
  }

  let youngP99Ms = Number.NaN;
  for (const checkpoint of checkpoints) {
    o.log(`serving the workload until ${checkpoint.toLocaleString('en-US')} requests (${served.toLocaleString('en-US')} so far)`);
    await serveUntil(checkpoint);
    // A moment idle, so the figure is what the process keeps, not what the last burst left.
    await sleep(1_000);
    rss[String(checkpoint)] = rssMb(server.pid);
    o.log(`${served.toLocaleString('en-US')} requests served, RSS ${rss[String(checkpoint)]!.toFixed(1)} MB`);
    if (o.heapSnapshots && snapshotDir) await snapshot(server, snapshotDir);
    if (checkpoint === checkpoints[0]) {
      o.log(`young open loop, ${o.rate} req/s for ${o.durationS} s`);
      youngP99Ms = await openLoop('youngOpenLoop');
    }
  }
  o.log(`aged open loop, ${o.rate} req/s for ${o.durationS} s`);
  const agedP99Ms = await openLoop('agedOpenLoop');
  return { youngP99Ms, agedP99Ms, rssMb: rss, served, failed, raw };
}
