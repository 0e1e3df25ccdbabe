// One wrk run of the bench's chat request against a server, with the CPU it
// cost: what every benchmark's closed-loop phase measures.
import { join } from 'node:path';
import { num, runTool, watchCpu, type CpuUsage, type Server } from './processes.js';
import { BENCH_DIR } from './setup.js';

export interface WrkOptions {
  targetCpu: number;
  loadCpu: number;
  connections: number;
  seconds: number;
  /** The request body; `{n}` becomes a per-request counter (see chat.lua). */
  body: string;
  /** The Authorization header value ('' for none). */
  auth: string;
  /** Default: /v1/chat/completions. */
  path?: string;
}

export interface WrkRun {
  requests: number;
  rps: number;
  p50Ms: number;
  p99Ms: number;
  cpuUsPerRequest: number;
  /** Failed or non-2xx requests. */
  failed: number;
  cpu: CpuUsage;
  /** wrk's own summary line. */
  result: Record<string, unknown>;
}

export async function wrkChat(server: Server, o: WrkOptions): Promise<WrkRun> {
  const stopWatch = watchCpu(server.pid, o.targetCpu, o.loadCpu);
  const result = await runTool({
    cpu: o.loadCpu,
    command: 'wrk',
    args: ['-t1', `-c${o.connections}`, `-d${o.seconds}s`, '--timeout', '5s', '-s', join(BENCH_DIR, 'chat.lua'), `${server.url}${o.path ?? '/v1/chat/completions'}`],
    env: { ...process.env, BENCH_BODY: o.body, BENCH_AUTH: o.auth },
    timeoutMs: (o.seconds + 30) * 1000,
  });
  const cpu = stopWatch();
  const requests = num(result, 'requests');
  return {
    requests,
    rps: requests / (num(result, 'durationUs') / 1e6),
    p50Ms: num(result, 'p50Us') / 1000,
    p99Ms: num(result, 'p99Us') / 1000,
    cpuUsPerRequest: cpu.targetUs / Math.max(1, requests),
    failed: ['connectErrors', 'readErrors', 'writeErrors', 'timeouts', 'non2xx'].reduce((sum, key) => sum + num(result, key), 0),
    cpu,
    result,
  };
}
