// Assembles a running gateway: config, providers, telemetry, audit and the
// HTTP server, and takes it down again gracefully.
import type { AddressInfo } from 'node:net';
import { createServer, type Server } from 'node:http';
import type { DestinationStream } from 'pino';
import type { AuditSink } from './audit/transport/writer.js';
import { startAuditTrail } from './audit/sink.js';
import { compileConfig, type CompiledConfig } from './config/compile.js';
import { ConfigError, loadConfig } from './config/load.js';
import { restartOnlyChanges, restartOnlySettings, type ReloadResult } from './config/restart-only.js';
import { configWatchTargets, watchConfig } from './config/watch.js';
import { createBreakerSync, type BreakerSync } from './routing/breaker-sync.js';
import { createHealthRegistry } from './routing/health.js';
import { createRedisClient, type RedisStore } from './stores/redis.js';
import { createSloTracker } from './routing/slo.js';
import { createHttpClients } from './providers/http.js';
import { createRequestListener } from './server/app.js';
import { promptWatchTargets } from './prompts/load.js';
import type { GatewayState } from './server/state.js';
import { createServices } from './services.js';
import { attachToolGateway } from './mcp/govern.js';
import type { Services } from './pipeline/context.js';
import { createLogger, flushAccessLines, type Logger } from './telemetry/logger.js';
import { initialiseSeries } from './telemetry/initial-series.js';
import { createMetrics, type Metrics } from './telemetry/metrics.js';
import { createTracing } from './telemetry/tracing.js';

export interface StartOptions {
  configFile: string;
  env?: NodeJS.ProcessEnv;
  /** Overrides the config's port (0 picks a free one). */
  port?: number;
  host?: string;
  logDestination?: DestinationStream;
  /** Reload when the config file changes (default true). */
  watch?: boolean;
}

export interface Gateway {
  readonly url: string;
  readonly port: number;
  readonly server: Server;
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly audit: AuditSink;
  /** The long-lived services requests run with (the MCP endpoint and its tests call tool governance with them). */
  readonly services: Services;
  config(): CompiledConfig;
  /** Loads, validates and swaps in the config file; the old config keeps serving if it is invalid. */
  reload(): Promise<ReloadResult>;
  /** Stops accepting, lets in-flight requests finish up to the grace period, flushes the audit. */
  shutdown(): Promise<void>;
}

export async function startGateway(options: StartOptions): Promise<Gateway> {
  const env = options.env ?? process.env;
  const loaded = await loadConfig(options.configFile, env);
  const clients = createHttpClients();
  let current = compileConfig(loaded.config, loaded.file, clients, loaded.policies, loaded.prompts);

  const logger = createLogger({ level: current.logging.level, destination: options.logDestination });
  const metrics = createMetrics();

  const redis: RedisStore | undefined = current.redis.url
    ? createRedisClient({
        url: current.redis.url,
        keyPrefix: current.redis.key_prefix,
        logger,
        metrics,
        commandTimeoutMs: current.redis.command_timeout_ms,
        downAfterTimeouts: current.redis.down_after_timeouts,
        downCooldownMs: current.redis.down_cooldown_ms,
      })
    : undefined;
  // What start has opened so far: if a later step fails, it is closed again,
  // so a failed start leaves nothing running (no reconnecting Redis client, no
  // timers or sockets keeping the process alive) and the error reaches the caller.
  const parts: Parts = { logger, config: () => current, redis, clients };
  try {
    return await startParts();
  } catch (err) {
    await closeParts(parts);
    throw err;
  }

  async function startParts(): Promise<Gateway> {
    if (redis && !(await redis.whenReady(REDIS_START_WAIT_MS))) {
      // Started anyway, degraded: each store falls back or refuses while Redis is down, and picks it up when it comes.
      logger.warn({ waitedMs: REDIS_START_WAIT_MS }, 'redis is not reachable at start; starting without it until it answers');
    }
    const trail = await startAuditTrail({ config: current.audit, registry: metrics.registry, logger, redis, lanes: () => current.policies.lanes });
    parts.trail = trail;
    const audit = trail.sink;
    // undefined unless telemetry.otlp_endpoint is set: then no OpenTelemetry code is even loaded.
    const tracing = await createTracing(loaded.config.telemetry, logger);
    parts.tracing = tracing;
    let breakerSync: BreakerSync | undefined;
    const BREAKER_LEVEL = { closed: 0, half_open: 1, open: 2 } as const;
    const health = createHealthRegistry({
      onBreakerChange(id, breakerState, openUntil) {
        metrics.breakerState.labels(id).set(BREAKER_LEVEL[breakerState]);
        logger.warn({ deployment: id, breaker: breakerState }, 'circuit breaker changed state');
        if (breakerState !== 'half_open') breakerSync?.publish(id, breakerState, openUntil);
      },
      onCoolDown(id, until, { remote }) {
        metrics.cooldownUntil.labels(id).set(until / 1000);
        if (remote) return;
        metrics.cooldowns.labels(id).inc();
        breakerSync?.publishCoolDown(id, until);
      },
    });
    if (redis) parts.breakerSync = breakerSync = await createBreakerSync(redis, health, logger);
    const slo = createSloTracker(metrics);

    const running = restartOnlySettings(current.raw);
    async function reload(): Promise<ReloadResult> {
      try {
        const next = await loadConfig(options.configFile, env);
        const compiled = compileConfig(next.config, next.file, clients, next.policies, next.prompts);
        const restartRequired = restartOnlyChanges(running, restartOnlySettings(compiled.raw));
        // Settings that shape the process itself need a restart to change.
        current = { ...compiled, server: current.server, audit: current.audit, redis: current.redis };
        initialiseSeries(state.services, current);
        metrics.configReloads.labels('ok').inc();
        logger.info({ config: next.file, models: [...compiled.models.keys()] }, 'config reloaded');
        if (restartRequired.length > 0) {
          logger.warn({ settings: restartRequired }, `config reloaded, but these settings change only on restart and keep their running values: ${restartRequired.join(', ')}`);
        }
        state.lastReload = { at: new Date().toISOString(), ok: true, problems: null, restart_required: restartRequired };
        return { ok: true, restart_required: restartRequired };
      } catch (err) {
        metrics.configReloads.labels('error').inc();
        const problems = err instanceof ConfigError ? err.message : String(err);
        logger.error({ problems }, 'config reload rejected; the previous config keeps serving');
        state.lastReload = { at: new Date().toISOString(), ok: false, problems, restart_required: [] };
        return { ok: false, problems };
      }
    }

    let idleWaiters: Array<() => void> = [];
    const state: GatewayState = {
      config: () => current,
      metrics,
      logger,
      audit,
      services: createServices({ config: () => current, logger, metrics, redis, health, server: { audit } }),
      slo,
      tracing,
      reload,
      inflight: 0,
      shuttingDown: false,
      onIdle() {
        if (state.inflight > 0) return;
        const waiters = idleWaiters;
        idleWaiters = [];
        for (const w of waiters) w();
      },
    };

    parts.services = state.services;
    initialiseSeries(state.services, current);
    // Tool calls through /mcp write their records to the same trail as requests.
    attachToolGateway(state.services, { audit });

    // Budgets start from the usage ledger before the first request, not during it:
    // the first requests then neither wait for the rebuild nor share memory with it.
    const budget = state.services.budget;
    if (!current.limits.empty && !(await budget.store.seeded().catch(() => true))) {
      await budget.rebuild(budget.store).catch((err: unknown) => logger.error({ err: String(err) }, 'budget counters could not be rebuilt at start; the first request tries again'));
    }

    // Queued work left by the last run (or by other replicas) starts draining now.
    await state.services.queue?.start();

    const host = options.host ?? current.server.host;
    const port = options.port ?? current.server.port;
    const { header_timeout_ms: headerTimeout, body_timeout_ms: bodyTimeout } = current.server;
    const server = createServer(
      {
        headersTimeout: headerTimeout,
        // Our own body timer answers 408 first; this is the socket-level backstop.
        requestTimeout: headerTimeout + bodyTimeout + 5_000,
        // Node enforces both timeouts only when it checks its connections (every
        // 30 s by default), so a client trickling one header line a second was
        // cut after 30-60 s, not at the timeout.
        connectionsCheckingInterval: Math.max(50, Math.min(1_000, Math.floor(headerTimeout / 4))),
      },
      createRequestListener(state),
    );
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => resolve());
    });
    const address = server.address() as AddressInfo;
    const urlHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;

    if (current.auth.mode === 'none') logger.warn('auth.mode is "none": every request is accepted without a key. Use this for local development only.');
    for (const name of current.disabledProviders) logger.info({ provider: name }, 'provider disabled: no API key configured');
    logger.info({ port: address.port, config: loaded.file, models: [...current.models.keys()] }, 'lanegate listening');

    const unwatch =
      options.watch === false ? () => {} : watchConfig([...configWatchTargets(options.configFile, loaded.policies.dir || undefined), ...promptWatchTargets(loaded.prompts)], () => void reload());

    let stopping: Promise<void> | undefined;
    return {
      url: `http://${urlHost === '0.0.0.0' || urlHost === '[::]' ? '127.0.0.1' : urlHost}:${address.port}`,
      port: address.port,
      server,
      logger,
      metrics,
      audit,
      services: state.services,
      config: () => current,
      reload,
      shutdown() {
        stopping ??= (async () => {
          state.shuttingDown = true;
          unwatch();
          const closed = new Promise<void>((resolve) => server.close(() => resolve()));
          if ('closeIdleConnections' in server) server.closeIdleConnections();
          const grace = current.server.shutdown_grace_ms;
          if (state.inflight > 0) {
            await Promise.race([
              new Promise<void>((resolve) => idleWaiters.push(resolve)),
              new Promise<void>((resolve) => setTimeout(resolve, grace).unref()),
            ]);
          }
          if ('closeAllConnections' in server) server.closeAllConnections();
          await closed;
          await closeParts(parts, current.server.shutdown_grace_ms);
          flushAccessLines(logger);
          logger.info('lanegate stopped');
          logger.flush?.();
        })();
        return stopping;
      },
    };
  }
}

/** How long start waits for the Redis connection before it goes on without it. */
const REDIS_START_WAIT_MS = 2_000;

/** The parts of a gateway that are closed at shutdown, or after a failed start (then only those opened so far). */
interface Parts {
  logger: Logger;
  config(): CompiledConfig;
  redis: RedisStore | undefined;
  clients: ReturnType<typeof createHttpClients>;
  trail?: Awaited<ReturnType<typeof startAuditTrail>>;
  tracing?: Awaited<ReturnType<typeof createTracing>>;
  breakerSync?: BreakerSync;
  services?: Services;
}

/**
 * Closes what sits behind the HTTP server, in order. Each part below the
 * audit trail gets a bounded wait (settleWithin): one that never settles is
 * logged by name and left behind, so closing always ends.
 */
async function closeParts(p: Parts, grace = 0): Promise<void> {
  const { logger, services } = p;
  const queueWait = Math.min(grace, 5_000);
  // Lines still running get the grace left; what is unfinished stays queued for the next start.
  await settleWithin(logger, 'work queue', services?.queue?.stop(queueWait), queueWait + PART_CLOSE_MS);
  p.trail?.sweeper?.stop();
  // Shadow runs started by the last replies get a moment to finish and be recorded.
  const shadowWait = p.config().prompts.shadow.shutdown_wait_ms;
  await settleWithin(logger, 'shadow runs', services?.prompts?.shadow.drain(shadowWait), shadowWait + PART_CLOSE_MS);
  await settleWithin(logger, 'MCP upstreams', services?.mcp?.close(), PART_CLOSE_MS);
  services?.files.close();
  // The audit trail is waited for whole: it owns its flush and loss guarantees.
  await p.trail?.sink.close();
  await settleWithin(logger, 'tracing', p.tracing?.shutdown(), PART_CLOSE_MS);
  // Cache writes still under way finish before their connection goes.
  await settleWithin(logger, 'cache writes', services?.cache?.drain(), PART_CLOSE_MS);
  await settleWithin(logger, 'breaker sync', p.breakerSync?.close(), PART_CLOSE_MS);
  services?.budget.close();
  await settleWithin(logger, 'redis', p.redis?.close(), PART_CLOSE_MS);
  await settleWithin(logger, 'upstream clients', p.clients.close(), PART_CLOSE_MS);
}

/** How long a part of the gateway may take to close at shutdown, past its own wait, before shutdown goes on without it. */
const PART_CLOSE_MS = 5_000;

/**
 * Waits for a part's close at most `ms`: a part that never settles (a lost
 * promise, a peer that stopped answering) is logged by name and left
 * behind, and one that fails is logged, so shutdown always goes on to the
 * next part and ends.
 */
async function settleWithin(logger: Logger, part: string, work: Promise<unknown> | undefined, ms: number): Promise<void> {
  if (!work) return;
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'late'>((resolve) => {
    timer = setTimeout(() => resolve('late'), ms);
  });
  try {
    if ((await Promise.race([work.then(() => 'done' as const), late])) === 'late') {
      logger.warn({ part, waitedMs: ms }, 'shutdown: a part did not close in time; going on without it');
    }
  } catch (err) {
    logger.warn({ part, err: String(err) }, 'shutdown: a part failed to close');
  } finally {
    clearTimeout(timer);
  }
}
