// The shared Redis connection behind the multi-instance stores (cache, budgets,
// rate limits, breaker state, audit streams). Losing Redis must degrade the
// gateway, never take it down or stall it: while disconnected, commands fail
// at once instead of queueing, reconnection never gives up, and an outage is
// logged once per interval rather than once per retry.
import { createRequire } from 'node:module';
import type { Command, Redis, RedisOptions, RedisStatus } from 'ioredis';
import { STORE_DOWN_MESSAGE, StoreCircuit } from './store-circuit.js';

// ioredis is loaded on first use: a single-instance gateway never needs it,
// and it costs about 10 MB of memory.
const requireModule = createRequire(import.meta.url);
function redisClass(): typeof Redis {
  return (requireModule('ioredis') as typeof import('ioredis')).Redis;
}
import type { Counter, Gauge } from 'prom-client';
import type { Logger } from '../telemetry/logger.js';

/**
 * Part of every key. Bump it when the layout of a key, or of the value stored
 * under it, changes incompatibly, so instances of different versions never
 * read each other's data during a rolling deploy. Keys of the old version are
 * then ignored until their TTL runs out; counters without a TTL (budgets)
 * start again from zero, so a bump needs a line in the release notes.
 */
export const KEY_VERSION = 'v1';

/** The gateway metrics this store reports to, by connection (`commands`, `subscriber`). */
export interface RedisMetrics {
  /** 1 while the connection is ready, else 0. */
  redisUp: Gauge<'connection'>;
  /** Connection-level errors (refused, reset, timed out), not command errors. */
  redisConnectionErrors: Counter<'connection'>;
}

export interface RedisStoreOptions {
  /** `redis://` or `rediss://`. It may hold a password, so it is never logged. */
  url: string;
  /** Namespace for every key, e.g. `lanegate` or `lanegate-staging`, so several deployments can share one Redis. */
  keyPrefix: string;
  logger: Logger;
  metrics?: RedisMetrics;
  /**
   * How long a command may wait for its reply before it is rejected. Defaults
   * to 1000 ms. It applies to every command on these connections, blocking
   * ones included: run `XREAD BLOCK` and the like on a `client.duplicate()`
   * with a `commandTimeout` longer than the block.
   */
  commandTimeoutMs?: number;
  /**
   * Consecutive command timeouts after which Redis is marked down: commands
   * then fail at once (as a timeout) for `downCooldownMs`, then one probe is
   * sent. Defaults to 3 and 2000 ms.
   */
  downAfterTimeouts?: number;
  downCooldownMs?: number;
  /** How long a connection attempt may take. Defaults to 2000 ms. */
  connectTimeoutMs?: number;
  /** Shown by `CLIENT LIST`; the subscriber adds `-sub`. Defaults to `lanegate`. */
  connectionName?: string;
}

export interface RedisStore {
  /** The command connection. Fails fast (rejects) while Redis is unreachable. */
  readonly client: Redis;
  /** `<prefix>:v1:<parts joined by ':'>`. Parts are joined as they are: hash or encode anything a client controls. */
  key(...parts: string[]): string;
  /** True while the command connection is up; commands sent now are expected to succeed. */
  isReady(): boolean;
  /**
   * Resolves true once the command connection is ready, or false after
   * `timeoutMs` (or on close): never a rejection. Start-up waits on it, so the
   * first commands are not refused only because the connection is still
   * being made (commands fail fast instead of queueing while it is not ready).
   */
  whenReady(timeoutMs: number): Promise<boolean>;
  /** Round trip to Redis; false (never a rejection) when it is unreachable, slow or closed. */
  ping(): Promise<boolean>;
  /**
   * A second connection for SUBSCRIBE, created on first call and reused
   * afterwards (a subscribed connection cannot run other commands). Publish on
   * `client`. Subscriptions are renewed by ioredis after a reconnect.
   */
  subscriber(): Redis;
  /** Quits both connections; resolves even if Redis is gone. */
  close(): Promise<void>;
}

type Connection = 'commands' | 'subscriber';

const UNAVAILABLE_LOG_INTERVAL_MS = 10_000;
const CLOSE_WAIT_MS = 1_000;

/**
 * Capped exponential backoff, retried forever: Redis coming back is always
 * worth reconnecting to. The jitter keeps a fleet of gateways from
 * reconnecting in lockstep after a Redis restart.
 */
function reconnectDelay(attempt: number): number {
  return Math.min(50 * 2 ** attempt, 2_000) + Math.floor(Math.random() * 50);
}

export function createRedisClient(options: RedisStoreOptions): RedisStore {
  checkUrl(options.url);
  if (!/^\S+$/.test(options.keyPrefix)) {
    throw new Error(`redis keyPrefix must be a non-empty string without spaces, e.g. "lanegate" (got ${JSON.stringify(options.keyPrefix)})`);
  }
  const { logger, metrics, keyPrefix } = options;
  const connectionName = options.connectionName ?? 'lanegate';

  let closed = false;
  let closing: Promise<void> | undefined;
  let sub: Redis | undefined;

  // One budget for both connections: an outage usually hits both at once and
  // deserves one error line, not one per connection per retry.
  let lastUnavailableLog = Number.NEGATIVE_INFINITY;
  let suppressed = 0;
  function reportUnavailable(connection: Connection, err?: Error): void {
    const now = Date.now();
    if (now - lastUnavailableLog < UNAVAILABLE_LOG_INTERVAL_MS) {
      suppressed++;
      return;
    }
    lastUnavailableLog = now;
    logger.error({ connection, err, suppressed }, 'redis unavailable');
    suppressed = 0;
  }

  function watch(conn: Redis, connection: Connection): void {
    let everReady = false;
    let downSince: number | undefined;
    metrics?.redisUp.set({ connection }, 0);
    conn.on('ready', () => {
      metrics?.redisUp.set({ connection }, 1);
      if (!everReady) logger.info({ connection }, 'redis connected');
      else if (downSince !== undefined) logger.info({ connection, downMs: Date.now() - downSince }, 'redis reconnected');
      everReady = true;
      downSince = undefined;
    });
    // Without a listener ioredis prints every failed reconnect to stderr.
    conn.on('error', (err: Error) => {
      if (closed) return;
      metrics?.redisConnectionErrors.inc({ connection });
      reportUnavailable(connection, err);
    });
    conn.on('close', () => {
      metrics?.redisUp.set({ connection }, 0);
      if (closed || downSince !== undefined) return;
      downSince = Date.now();
      reportUnavailable(connection);
    });
  }

  const clientOptions: RedisOptions = {
    lazyConnect: false,
    // Queued commands would hold requests hostage for as long as Redis is
    // down; failing at once lets each store fall back or refuse right away.
    enableOfflineQueue: false,
    // Commands already sent when the connection drops get one resend at most.
    maxRetriesPerRequest: 1,
    retryStrategy: reconnectDelay,
    connectTimeout: options.connectTimeoutMs ?? 2_000,
    commandTimeout: options.commandTimeoutMs ?? 1_000,
    connectionName,
  };
  const client = new (redisClass())(options.url, clientOptions);
  watch(client, 'commands');
  guardCommands(client, new StoreCircuit({
    timeouts: options.downAfterTimeouts ?? 3,
    cooldownMs: options.downCooldownMs ?? 2_000,
    onChange(down) {
      if (down) logger.error({ connection: 'commands', timeoutMs: clientOptions.commandTimeout }, 'redis is not answering: marked down, commands fail fast until a probe answers');
      else logger.info({ connection: 'commands' }, 'redis answers again: marked up');
      metrics?.redisUp.set({ connection: 'commands' }, down || client.status !== 'ready' ? 0 : 1);
    },
  }));

  return {
    client,
    key: (...parts) => [keyPrefix, KEY_VERSION, ...parts].join(':'),
    isReady: () => !closed && client.status === 'ready',
    whenReady(timeoutMs) {
      if (closed) return Promise.resolve(false);
      if (client.status === 'ready') return Promise.resolve(true);
      return new Promise<boolean>((resolve) => {
        const done = (ready: boolean) => {
          clearTimeout(timer);
          client.off('ready', onReady);
          client.off('end', onEnd);
          resolve(ready);
        };
        const onReady = () => done(true);
        const onEnd = () => done(false);
        const timer = setTimeout(() => done(false), timeoutMs);
        client.on('ready', onReady);
        client.on('end', onEnd);
      });
    },
    async ping() {
      if (closed) return false;
      try {
        return (await client.ping()) === 'PONG';
      } catch {
        return false;
      }
    },
    subscriber() {
      if (closed) throw new Error('this Redis store is closed: call subscriber() before close()');
      if (!sub) {
        sub = client.duplicate({
          // A SUBSCRIBE issued while this new connection is still connecting
          // should wait for it. It still fails fast when Redis is down: with
          // maxRetriesPerRequest 1 the queue is flushed with an error after
          // the second failed connection attempt.
          enableOfflineQueue: true,
          connectionName: `${connectionName}-sub`,
        });
        watch(sub, 'subscriber');
      }
      return sub;
    },
    close() {
      closing ??= (async () => {
        closed = true;
        await Promise.all([shutDown(client), sub ? shutDown(sub) : undefined]);
      })();
      return closing;
    },
  };
}

/**
 * Every command on this connection passes the circuit (pipelines too: they
 * send each of their commands through sendCommand). ioredis has no hook for
 * this, so the instance's sendCommand is wrapped; duplicates are not.
 *
 * A pipeline is all or nothing: while the store is down none of its commands
 * go, and it never carries the probe. ioredis writes a pipeline's bytes only
 * once every command of it is written, but queues each one for a reply as it
 * goes: a probe let through with the rest refused would wait for a reply
 * never asked for, and every later reply would go to the command before it.
 */
function guardCommands(conn: Redis, circuit: StoreCircuit): void {
  const send = conn.sendCommand.bind(conn);
  conn.sendCommand = (command: Command, stream?: Parameters<Redis['sendCommand']>[1]): unknown => {
    const pipelined = typeof stream === 'object' && stream !== null && 'isPipeline' in stream;
    if (pipelined ? circuit.isDown() : !circuit.allow(Date.now())) {
      command.reject(new Error(STORE_DOWN_MESSAGE));
      return command.promise;
    }
    const sent = send(command, stream);
    command.promise.then(
      () => circuit.record('answered', Date.now()),
      (err: unknown) => circuit.record(outcomeOf(err), Date.now()),
    );
    return sent;
  };
}

function outcomeOf(err: unknown): 'answered' | 'timeout' | 'failed' {
  const message = err instanceof Error ? err.message : '';
  if (message === 'Command timed out') return 'timeout';
  // An error reply (NOSCRIPT, WRONGTYPE...) came from Redis, so it answered.
  return err instanceof Error && err.name === 'ReplyError' ? 'answered' : 'failed';
}

/** QUIT when connected (lets Redis finish what it has), otherwise just drop the socket and stop reconnecting. */
async function shutDown(conn: Redis): Promise<void> {
  const status = (): RedisStatus => conn.status;
  if (status() === 'end') return;
  // Only a live socket will emit 'end'; between reconnect attempts there is nothing to wait for.
  const hasSocket = status() === 'connecting' || status() === 'connect' || status() === 'ready';
  const ended = new Promise<void>((resolve) => conn.once('end', () => resolve()));
  try {
    if (status() === 'ready') await conn.quit();
  } catch {
    // The socket is dropped below either way.
  }
  if (status() !== 'end') conn.disconnect();
  if (!hasSocket) return;
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([ended, new Promise<void>((resolve) => (timer = setTimeout(resolve, CLOSE_WAIT_MS)))]);
  clearTimeout(timer);
}

function checkUrl(url: string): void {
  let protocol: string;
  try {
    protocol = new URL(url).protocol;
  } catch {
    // The URL may hold a password: describe it, never echo it.
    throw new Error('redis url is not a valid URL; expected redis://[user:password@]host:port[/db] or rediss://… for TLS');
  }
  if (protocol !== 'redis:' && protocol !== 'rediss:') {
    throw new Error(`redis url must start with redis:// or rediss:// (got ${protocol}//)`);
  }
}
