// Child processes for the benchmark: started pinned to one CPU with taskset,
// bounded in time, and all killed when the run ends, fails or is interrupted.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { accessSync, closeSync, constants, openSync, readdirSync, readFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

const children = new Set<ChildProcess>();

function killAll(signal: NodeJS.Signals): void {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill(signal);
}

/** Kills every child still running when this process exits, however it exits. */
export function installCleanup(): void {
  process.on('exit', () => killAll('SIGKILL'));
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      console.error(`\nbench: ${signal}, stopping child processes`);
      killAll('SIGKILL');
      process.exit(130);
    });
  }
}

export function onPath(command: string): boolean {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    try {
      accessSync(join(dir, command), constants.X_OK);
      return true;
    } catch {
      // not in this directory
    }
  }
  return false;
}

/** Moves every thread of this process to `cpu`, away from the process under test. */
export function pinSelf(cpu: number): void {
  execFileSync('taskset', ['-a', '-c', '-p', String(cpu), String(process.pid)], { stdio: 'ignore' });
}

function track(child: ChildProcess): ChildProcess {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

export interface Server {
  name: string;
  pid: number;
  url: string;
  logFile: string;
  stop(): Promise<void>;
}

export interface ServerOptions {
  name: string;
  cpu: number;
  args: string[];
  logFile: string;
  /** Text that appears on the JSON line logged when the server is listening. */
  readyMessage: string;
  env?: NodeJS.ProcessEnv;
  /** How long it may take to start (default 20 s). */
  startTimeoutMs?: number;
}

/**
 * Starts `node <args>` on one CPU with its output going to a file (a busy
 * access log must never block on a pipe nobody reads) and waits for the
 * line that carries the port it listens on.
 */
export async function startServer(options: ServerOptions): Promise<Server> {
  const out = openSync(options.logFile, 'a');
  const child = track(
    spawn('taskset', ['-c', String(options.cpu), process.execPath, ...options.args], {
      stdio: ['ignore', out, out],
      env: options.env ?? process.env,
    }),
  );
  closeSync(out);
  const pid = child.pid;
  if (pid === undefined) throw new Error(`${options.name}: could not start (is taskset installed?)`);

  const deadline = Date.now() + (options.startTimeoutMs ?? 20_000);
  for (;;) {
    const log = readFileSync(options.logFile, 'utf8');
    const line = log.split('\n').find((l) => l.includes(options.readyMessage) && /"port":\d+/.test(l));
    if (line) {
      const port = Number(/"port":(\d+)/.exec(line)?.[1]);
      return {
        name: options.name,
        pid,
        url: `http://127.0.0.1:${port}`,
        logFile: options.logFile,
        async stop() {
          child.kill('SIGTERM');
          const killer = setTimeout(() => child.kill('SIGKILL'), 5_000);
          await exited(child);
          clearTimeout(killer);
        },
      };
    }
    if (child.exitCode !== null || child.signalCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`${options.name} did not start; the end of ${options.logFile}:\n${log.slice(-2_000)}`);
    }
    await sleep(50);
  }
}

export interface ToolOptions {
  cpu: number;
  command: string;
  args: string[];
  env?: NodeJS.ProcessEnv;
  /** The tool is killed (and the run fails) if it is still running after this. */
  timeoutMs: number;
}

/** Runs a load generator on one CPU and returns its `BENCH_RESULT {...}` line, parsed. */
export async function runTool(options: ToolOptions): Promise<Record<string, unknown>> {
  const child = track(
    spawn('taskset', ['-c', String(options.cpu), options.command, ...options.args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: options.env ?? process.env,
    }),
  );
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (part: Buffer) => (stdout += part.toString('utf8')));
  child.stderr?.on('data', (part: Buffer) => (stderr += part.toString('utf8')));
  const killer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs);
  await exited(child);
  clearTimeout(killer);
  const line = stdout.split('\n').find((l) => l.startsWith('BENCH_RESULT '));
  const name = `${options.command} ${options.args.join(' ')}`;
  if (!line) throw new Error(`${name} gave no result (exit ${child.exitCode ?? child.signalCode}):\n${stdout}${stderr}`.slice(0, 4_000));
  const parsed: unknown = JSON.parse(line.slice('BENCH_RESULT '.length));
  if (typeof parsed !== 'object' || parsed === null) throw new Error(`${name}: unreadable result ${line}`);
  return parsed as Record<string, unknown>;
}

/** A numeric field of a tool's result; a missing one is a bug in the tool, so it throws. */
export function num(result: Record<string, unknown>, key: string): number {
  const value = result[key];
  if (typeof value !== 'number') throw new Error(`result has no number "${key}": ${JSON.stringify(result)}`);
  return value;
}

/** A latency field of a tool's result: null (no successful request to time) reads as NaN. */
export function latency(result: Record<string, unknown>, key: string): number {
  return result[key] === null ? Number.NaN : num(result, key);
}

/**
 * Refused or failed answers in a server's JSON access log, as
 * "429 rate_limited × 12", and the first such line (the log itself is
 * deleted with the temporary directory after a successful run).
 */
export function refusalsInLog(logFile: string): { counts: string[]; example?: string } {
  const counts = new Map<string, number>();
  let example: string | undefined;
  for (const line of readFileSync(logFile, 'utf8').split('\n')) {
    const status = /"status":(\d{3})/.exec(line)?.[1];
    if (!status || status.startsWith('2')) continue;
    // wrk drops its connections with requests in flight when its time is up.
    if (line.includes('"clientDisconnected":true')) continue;
    example ??= line.slice(0, 400);
    const key = `${status} ${/"code":"([a-z_]+)"/.exec(line)?.[1] ?? ''}`.trim();
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return { counts: [...counts].map(([key, n]) => `${key} × ${n}`), example };
}

const clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;

/** User + system CPU time of a process (all its threads), in microseconds. */
export function cpuTimeUs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name, which is in parentheses and may hold spaces.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  return ((utime + stime) * 1_000_000) / clockTicks;
}

/** The process's peak resident set size so far (VmHWM), in KiB. */
export function peakRssKb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const match = /^VmHWM:\s+(\d+) kB/m.exec(status);
  if (!match) throw new Error(`no VmHWM in /proc/${pid}/status`);
  return Number(match[1]);
}

/**
 * Busy time of one CPU (all but idle and iowait, steal included), in
 * microseconds: compared with the target's own CPU time it shows whether
 * something else ran on the target's CPU during a measurement.
 */
export function cpuBusyUs(cpu: number): number {
  const line = readFileSync('/proc/stat', 'utf8')
    .split('\n')
    .find((l) => l.startsWith(`cpu${cpu} `));
  if (!line) throw new Error(`no cpu${cpu} in /proc/stat`);
  const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = line.trim().split(/\s+/).slice(1).map(Number);
  return ((user + nice + system + irq + softirq + steal) * 1_000_000) / clockTicks;
}

/** CPU time of every process on the machine, in microseconds, by pid. */
function allProcessCpuUs(): Map<number, number> {
  const times = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      times.set(Number(entry), cpuTimeUs(Number(entry)));
    } catch {
      // it exited meanwhile
    }
  }
  return times;
}

function commandLine(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim().slice(0, 100);
  } catch {
    return `pid ${pid}`;
  }
}

export interface CpuUsage {
  wallUs: number;
  /** CPU time of the process under test, as % of one core. */
  targetPct: number;
  /** Busy time of the target's CPU not spent in the target, as % of the window. */
  othersOnTargetCpuPct: number;
  /** Busy time of the load CPU (generators, upstream), as % of the window. */
  loadCpuPct: number;
  targetUs: number;
  /** The processes outside the bench that used the most CPU meanwhile (any CPU). */
  busiestOthers: string[];
}

/** Starts watching CPU use; the returned function reads the totals since. */
export function watchCpu(pid: number, targetCpu: number, loadCpu: number): () => CpuUsage {
  const startedAt = performance.now();
  const everyone = allProcessCpuUs();
  const target = cpuTimeUs(pid);
  const targetBusy = cpuBusyUs(targetCpu);
  const loadBusy = cpuBusyUs(loadCpu);
  return () => {
    const wallUs = (performance.now() - startedAt) * 1000;
    const targetUs = cpuTimeUs(pid) - target;
    const ours = new Set([process.pid, pid, ...[...children].map((c) => c.pid)]);
    const busiestOthers = [...allProcessCpuUs()]
      .filter(([other]) => !ours.has(other))
      .map(([other, us]) => [other, us - (everyone.get(other) ?? 0)] as const)
      .filter(([, us]) => us >= wallUs * 0.05)
      .sort((a, b) => b[1] - a[1])
      .slice(0, 3)
      .map(([other, us]) => `${commandLine(other)} (${(us / 1e6).toFixed(1)} s)`);
    return {
      wallUs,
      targetUs,
      targetPct: (targetUs / wallUs) * 100,
      // Kernel network work for the target's sockets lands here too, so a few
      // percent is normal; much more means another process shared the CPU.
      othersOnTargetCpuPct: ((cpuBusyUs(targetCpu) - targetBusy - targetUs) / wallUs) * 100,
      loadCpuPct: ((cpuBusyUs(loadCpu) - loadBusy) / wallUs) * 100,
      busiestOthers,
    };
  };
}

/**
 * Other work on the bench's CPUs makes every figure noisy (on a shared
 * machine, unusable): one line for each CPU over 10% busy during a second
 * of watching, before the run starts.
 */
export async function busyCpusBefore(cpus: number[]): Promise<string[]> {
  const idleBefore = cpus.map((cpu) => cpuBusyUs(cpu));
  await new Promise((resolve) => setTimeout(resolve, 1_000));
  const lines: string[] = [];
  for (const [i, cpu] of cpus.entries()) {
    const busyPct = (cpuBusyUs(cpu) - (idleBefore[i] ?? 0)) / 10_000;
    if (busyPct > 10) lines.push(`CPU ${cpu} was ${busyPct.toFixed(0)}% busy with other work just before the run: figures are noisy`);
  }
  return lines;
}
