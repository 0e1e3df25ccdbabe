// The real gateway as a child process (`lanegate serve`), for tests where
// replicas must be separate processes: their own memory, their own files,
// killed with SIGKILL and started again from the same config.
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '../..');
/** A start from the TypeScript sources compiles them first: over 20 s on a loaded 2-core machine. */
const START_TIMEOUT_MS = 120_000;

const alive = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of alive) child.kill('SIGKILL');
});

export interface GatewayProcess {
  readonly url: string;
  readonly baseURL: string;
  /** Everything the process wrote (JSON log lines) so far. */
  logs(): string;
  /** SIGKILL: no shutdown, no flush. */
  kill(): Promise<void>;
  /** SIGTERM and wait for the exit. */
  stop(): Promise<void>;
}

/** `entry`: the CLI to run (default bin/lanegate.mjs, which runs the sources in a checkout); a built dist/cli.js to test the build. */
export async function spawnGateway(configFile: string, o: { entry?: string } = {}): Promise<GatewayProcess> {
  const child = spawn(process.execPath, [o.entry ?? 'bin/lanegate.mjs', 'serve', '--config', configFile], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  alive.add(child);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  void exited.then(() => alive.delete(child));
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString('utf8')));
  child.stderr.on('data', (d: Buffer) => (out += d.toString('utf8')));
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => {
      // Not left running: its pipes would keep the test process alive after the failure.
      child.kill('SIGKILL');
      reject(new Error(`gateway did not start within ${START_TIMEOUT_MS} ms:\n${out}`));
    }, START_TIMEOUT_MS);
    const look = () => {
      const m = /"port":(\d+)[^\n]*lanegate listening/.exec(out);
      if (!m) return;
      clearTimeout(timer);
      child.stdout.off('data', look);
      resolve(Number(m[1]));
    };
    child.stdout.on('data', look);
    void exited.then(() => {
      clearTimeout(timer);
      reject(new Error(`gateway exited during start (code ${child.exitCode}, signal ${child.signalCode}):\n${out}`));
    });
  });
  const url = `http://127.0.0.1:${port}`;
  const end = async (signal: NodeJS.Signals) => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    await exited;
  };
  return { url, baseURL: `${url}/v1`, logs: () => out, kill: () => end('SIGKILL'), stop: () => end('SIGTERM') };
}
