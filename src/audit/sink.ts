// Assembles the audit trail the config asks for: the sink (file or Redis
// Streams) behind the bounded queue and the spool, optionally mirrored to an
// OTLP logs collector, the query side for the admin API, and the retention
// sweeper.
import type { Registry } from 'prom-client';
import type { CompiledPolicies } from '../policy/compile.js';
import type { RedisStore } from '../stores/redis.js';
import type { Logger } from '../telemetry/logger.js';
import { spoolDir, type AuditConfig } from './config.js';
import { createFileBackend } from './file-sink.js';
import { auditMetrics } from './metrics.js';
import { signalUrl } from '../telemetry/config.js';
import { createOtlpLogsMirror, mirrored } from './otlp-logs.js';
import { createFileQuery } from './query.js';
import { createRedisBackend, createRedisQuery } from './redis-sink.js';
import { startSweeper, type Sweeper } from './retention.js';
import { GATEWAY_CHAIN } from './schema.js';
import { openSpool } from './spool.js';
import { createAuditWriter, createNullSink, type AuditBackend, type AuditSink } from './writer.js';

export interface AuditTrail {
  sink: AuditSink;
  /** Undefined when the trail is off or sweeping is disabled. */
  sweeper: Sweeper | undefined;
}

export interface AuditTrailOptions {
  config: AuditConfig;
  registry: Registry;
  logger: Logger;
  redis: RedisStore | undefined;
  /** The current lanes (they change on reload): retention and what queries may show. */
  lanes: () => CompiledPolicies['lanes'];
}

const DAY_MS = 86_400_000;

export async function startAuditTrail(o: AuditTrailOptions): Promise<AuditTrail> {
  const { config, logger } = o;
  if (config.sink === 'off') return { sink: createNullSink(), sweeper: undefined };
  const metrics = auditMetrics(o.registry);
  const laneDays = (chain: string) => o.lanes().get(chain)?.audit.retention_days;
  const spool = config.spool.max_bytes > 0 ? await openSpool({ dir: spoolDir(config), maxBytes: config.spool.max_bytes }) : undefined;
  const common = {
    spool,
    queueSize: config.queue_size,
    batchSize: config.batch_size,
    onFull: config.on_full,
    shutdownFlushMs: config.shutdown_flush_ms,
    metrics,
    logger,
  };

  // Records the sink wrote are also sent to an OTLP logs collector, when one is configured.
  const mirror = config.otlp_logs.endpoint ? createOtlpLogsMirror(config.otlp_logs, { records: metrics.otlpRecords, logger }) : undefined;
  if (mirror) {
    const url = signalUrl(config.otlp_logs.endpoint, 'logs');
    logger.info({ endpoint: url.origin + url.pathname }, 'audit records are mirrored to an OTLP logs endpoint');
  }
  const withMirror = (backend: AuditBackend): AuditBackend => (mirror ? mirrored(backend, mirror, config.shutdown_flush_ms) : backend);

  if (config.sink === 'redis') {
    if (!o.redis) throw new Error('audit.sink redis needs redis.url');
    const redis = o.redis;
    const backend = createRedisBackend({ redis, maxLen: config.redis.max_len, retentionMs: (chain) => (laneDays(chain) ?? config.retention_days) * DAY_MS });
    const sink = createAuditWriter({ ...common, backend: withMirror(backend), query: createRedisQuery(redis, () => [...o.lanes().keys(), GATEWAY_CHAIN]) });
    const sweeper =
      config.sweep_interval_s > 0
        ? startSweeper({ sink: 'redis', dir: config.dir, redis, logger, metrics }, { intervalS: config.sweep_interval_s, laneDays, defaultDays: config.retention_days })
        : undefined;
    return { sink, sweeper };
  }

  const backend = createFileBackend({ dir: config.dir, rotateBytes: config.rotate_bytes, logger });
  const sink = createAuditWriter({ ...common, backend: withMirror(backend), query: createFileQuery(backend) });
  const sweeper =
    config.sweep_interval_s > 0
      ? startSweeper(
          { sink: 'file', dir: config.dir, logger, metrics },
          { intervalS: config.sweep_interval_s, laneDays, defaultDays: config.retention_days, activeFiles: () => backend.activeFiles() },
        )
      : undefined;
  return { sink, sweeper };
}
