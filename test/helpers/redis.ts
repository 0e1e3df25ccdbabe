// A private redis-server per test run: its own free port, no persistence, a
// temp working folder. Tests never touch a shared instance (6379), so they can
// kill and restart it to script faults without disturbing anything else.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, openSync, rmSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';

export interface TestRedis {
  /** `redis://127.0.0.1:<port>` */
  readonly url: string;
  readonly port: number;
  /** SIGTERM, waits for the exit and removes the temp folder. Safe to call twice. */
  stop(): Promise<void>;
  /** Stops, then starts a fresh, empty server on the same port. */
  restart(): Promise<void>;
  /** SIGKILL, for fault tests: clients see the connection drop with no goodbye. Resolves once the process is gone. */
  kill(): Promise<void>;
  /** SIGSTOP: the server keeps its connections but answers nothing (commands time out) until resume(). */
  pause(): void;
  /** SIGCONT after pause(). */
  resume(): void;
}

export interface RedisOptions {
  /** Requires AUTH with this password (`--requirepass`); the url then carries it. */
  password?: string;
}

const START_TIMEOUT_MS = 10_000;
const STOP_TIMEOUT_MS = 5_000;

// Servers still alive when the test process exits (a failed assertion before
// stop(), a crash) are killed here, and their folders removed, so nothing
// outlives its test run. Only synchronous work is possible in 'exit'.
const alive = new Map<ChildProcess, string>();
process.once('exit', () => {
  for (const [child, dir] of alive) {
    child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
});

interface Running {
  child: ChildProcess;
  dir: string;
  exited: Promise<void>;
}

export async function startRedis(options: RedisOptions = {}): Promise<TestRedis> {
  const port = await freePort();
  const password = options.password;
  let running: Running | undefined = await launch(port, password);

  async function stop(signal: NodeJS.Signals): Promise<void> {
    const current = running;
    if (!current) return;
    running = undefined;
    // The child is unref'd while idle; hold the event loop until it is gone.
    current.child.ref();
    if (current.child.exitCode === null && current.child.signalCode === null) {
      current.child.kill('SIGCONT'); // a frozen server would not act on SIGTERM
      current.child.kill(signal);
      const timer = setTimeout(() => current.child.kill('SIGKILL'), STOP_TIMEOUT_MS);
      await current.exited;
      clearTimeout(timer);
    }
    await rm(current.dir, { recursive: true, force: true });
  }

  return {
    url: password === undefined ? `redis://127.0.0.1:${port}` : `redis://:${encodeURIComponent(password)}@127.0.0.1:${port}`,
    port,
    stop: () => stop('SIGTERM'),
    kill: () => stop('SIGKILL'),
    async restart() {
      await stop('SIGTERM');
      running = await launch(port, password);
    },
    pause: () => void running?.child.kill('SIGSTOP'),
    resume: () => void running?.child.kill('SIGCONT'),
  };
}

async function launch(port: number, password?: string): Promise<Running> {
  const dir = await mkdtemp(path.join(tmpdir(), 'lanegate-redis-'));
  // redis-server logs to stdout; both streams go to a file rather than a pipe
  // so the only handle tying the test process to the server is the child itself.
  const outFile = path.join(dir, 'redis-server.log');
  const out = openSync(outFile, 'a');
  let child: ChildProcess;
  try {
    child = spawn(
      'redis-server',
      ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--loglevel', 'warning', ...(password === undefined ? [] : ['--requirepass', password])],
      { stdio: ['ignore', out, out] },
    );
  } finally {
    closeSync(out);
  }

  const spawnError = new Promise<Error>((resolve) => child.once('error', resolve));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  alive.set(child, dir);
  void exited.then(() => alive.delete(child));

  const output = async () => (await readFile(outFile, 'utf8').catch(() => '')).trim() || '(no output)';
  const fail = async (reason: string): Promise<never> => {
    const text = await output();
    child.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
    throw new Error(`redis-server on port ${port} ${reason}. Its output:\n${text}`);
  };

  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    const outcome = await Promise.race([
      spawnError.then((err) => ({ kind: 'spawn-error' as const, err })),
      exited.then(() => ({ kind: 'exited' as const })),
      ping(port, password).then((ok) => ({ kind: ok ? ('ready' as const) : ('not-yet' as const) })),
    ]);
    if (outcome.kind === 'ready') break;
    if (outcome.kind === 'spawn-error') {
      alive.delete(child);
      await rm(dir, { recursive: true, force: true });
      if ('code' in outcome.err && outcome.err.code === 'ENOENT') {
        throw new Error('redis-server is not on PATH; the Redis tests need it. Install it with: apt-get install -y redis-server', { cause: outcome.err });
      }
      throw new Error(`could not start redis-server: ${outcome.err.message}`, { cause: outcome.err });
    }
    if (outcome.kind === 'exited') return fail(`exited during startup (code ${child.exitCode}, signal ${child.signalCode})`);
    if (Date.now() > deadline) return fail(`did not answer PING within ${START_TIMEOUT_MS} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }

  // A test that forgets stop() should still let its process exit (the exit
  // hook above then kills the server) rather than hang the whole run.
  child.unref();
  return { child, dir, exited };
}

/** One raw RESP round trip (after AUTH, with a password): true only on `+PONG`. Refused, reset or slow counts as not ready. */
function ping(port: number, password?: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    let reply = '';
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(500, () => done(false));
    socket.once('error', () => done(false));
    const lines = password === undefined ? 1 : 2;
    socket.once('connect', () => socket.write(`${password === undefined ? '' : `AUTH ${password}\r\n`}PING\r\n`));
    socket.on('data', (chunk: Buffer) => {
      reply += chunk.toString('latin1');
      if (reply.split('\r\n').length > lines) done(reply.split('\r\n')[lines - 1] === '+PONG');
    });
  });
}

/** Asks the OS for a free port. Another process could take it before redis binds it; rare enough for tests. */
async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('could not read the free port from node:net');
  return address.port;
}
