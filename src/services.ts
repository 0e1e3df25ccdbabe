// The composition root: the one place that builds the long-lived services a
// request runs with, for the server (gateway.ts) and for the commands that
// run requests in this process (`lanegate explain`, `eval`, `promote`). The
// server passes what it has built first (its logger, metrics, Redis client
// and a health registry wired to breaker sync) and gets its own parts on top:
// the response cache, prompt shadow runs and admission gates. Commands that
// only need Redis get their client here too.
import { createAdmissionControl } from './admission/control.js';
import { createResponsesStore } from './api/responses/store.js';
import { createFilesMetrics } from './files/metrics.js';
import { createConfiguredFilesService } from './files/service.js';
import type { AuditSink } from './audit/transport/writer.js';
import { createBudgetServices } from './budget/services.js';
import { createCacheService } from './cache/service.js';
import type { CompiledConfig } from './config/compile.js';
import type { GatewayConfig } from './config/schema.js';
import type { Services } from './pipeline/context.js';
import { createToolGateway } from './mcp/tool-gateway.js';
import { createMcpUpstreams } from './mcp/upstreams.js';
import { shadowChatPipeline } from './pipeline/index.js';
import { createMemoryApprovalStore, createRedisApprovalStore } from './policy/approvals.js';
import { watchPendingApprovals } from './policy/approvals-metrics.js';
import { createPromptServices } from './prompts/services.js';
import { createQueueService } from './queue/service.js';
import { createHealthRegistry, type HealthRegistry } from './routing/health.js';
import { createRedisClient, type RedisStore } from './stores/redis.js';
import { createLogger, type Logger } from './telemetry/logger.js';
import { createMetrics, type Metrics } from './telemetry/metrics.js';

export interface ServicesOptions {
  /** The config in force; the server's changes on reload, so services read it through this. */
  config: () => CompiledConfig;
  /** Default: silent, for commands whose errors reach their own report. */
  logger?: Logger;
  /** Default: a registry of its own without process metrics, which nothing scrapes. */
  metrics?: Metrics;
  /** State shared with other replicas; without it approvals and budgets live in this process. */
  redis?: RedisStore;
  /** Default: one without hooks; the server's reports breaker changes to metrics and other replicas. */
  health?: HealthRegistry;
  /** The server's own parts (cache, prompt shadow runs, admission); absent for commands. */
  server?: { audit: AuditSink };
}

export function createServices(o: ServicesOptions): Services {
  const logger = o.logger ?? createLogger({ level: 'silent' });
  const metrics = o.metrics ?? createMetrics({ defaultMetrics: false });
  const { redis, server } = o;
  const registry = metrics.registry;
  // One object literal with every member from the start: stages read it on every request, so it keeps one shape.
  const services: Services = {
    health: o.health ?? createHealthRegistry(),
    metrics,
    logger,
    redis,
    approvals: redis ? createRedisApprovalStore(redis) : createMemoryApprovalStore(),
    budget: createBudgetServices({ redis, config: o.config, logger, metrics }),
    // The cache's size and store are settings of the process: read once, not on reload.
    cache: server ? createCacheService({ config: o.config().raw.cache, redis, registry, logger }) : undefined,
    prompts: server ? createPromptServices({ stages: shadowChatPipeline, services: () => services, audit: server.audit, logger, registry }) : undefined,
    admission: server ? createAdmissionControl(registry) : undefined,
    // Local MCP servers are processes of the server's: started here, stopped at shutdown. Read once, not on reload.
    mcp: server ? createMcpUpstreams({ servers: o.config().raw.mcp_servers, logger, metrics }) : undefined,
    // Stored responses live where approvals do: in Redis when replicas share state, so any of them continues a conversation.
    responses: server ? createResponsesStore({ redis }) : undefined,
    toolGateway: createToolGateway({ redis }),
    // Batch lines and background responses: a journal file, or Redis Streams when replicas share Redis. The server starts its worker.
    queue: server ? createQueueService({ config: o.config, redis, registry, audit: server.audit, services: () => services }) : undefined,
    // Batch files: a local folder, or the bucket replicas share (files.store); the server sweeps expired ones.
    files: createConfiguredFilesService({ config: o.config, logger, sweep: server !== undefined, metrics: server ? createFilesMetrics(registry) : undefined }),
  };
  // Approved calls are run by the gateway later, on the same upstream connections.
  if (services.mcp) services.toolGateway.execute = services.mcp.callTool;
  if (server) watchPendingApprovals(registry, services.approvals, logger);
  return services;
}

/**
 * A Redis client for a command that reads or writes shared state once and
 * exits (`costs`, `budgets rebuild`, `promote`'s audit record): silent, with
 * the client's default timeouts rather than the server's.
 */
export function createCommandRedis(redis: Pick<GatewayConfig['redis'], 'url' | 'key_prefix'>, options: { metrics?: Metrics } = {}): RedisStore {
  return createRedisClient({ url: redis.url, keyPrefix: redis.key_prefix, logger: createLogger({ level: 'silent' }), metrics: options.metrics });
}
