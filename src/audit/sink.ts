// Assembles the audit trail the config asks for: the sink (file or Redis
// Streams) behind the bounded queue and the spool, optionally mirrored to an
// OTLP logs collector, the query side for the admin API, and the retention
// sweeper.
import type { Registry } from 'prom-client';
import type { CompiledPolicies } from '../policy/compile.js';
import type { RedisStore } from '../stores/redis.js';
import type { Logger } from '../telemetry/logger.js';
import { randomUUID } from 'node:crypto';
import { spoolDir, type AuditConfig } from './config.js';
import { findInFiles, readIntents, recordIdOf, removeIntents, type Intents } from './read/crash-check.js';
import { createFileBackend } from './transport/file-sink.js';
import { auditMetrics } from './metrics.js';
import { signalUrl } from '../telemetry/config.js';
import { createOtlpLogsMirror, mirrored } from './transport/otlp-logs.js';
import { createFileQuery } from './read/query.js';
import { intentsDir, openIntentLog } from './transport/intents.js';
import { type AuditMetrics } from './metrics.js';
import { createRedisQuery } from './read/redis-query.js';
import { createRedisReader } from './read/redis-reader.js';
import { createRedisBackend } from './transport/redis-sink.js';
import { startSweeper, type Sweeper } from './read/retention.js';
import { AUDIT_RECORD_VERSION } from './schema.js';
import { openSpool } from './transport/spool.js';
import { createAuditWriter, createNullSink, type AuditBackend, type AuditSink } from './transport/writer.js';

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
const CRASH_CHECK_TIMEOUT_MS = 10_000;

export async function startAuditTrail(o: AuditTrailOptions): Promise<AuditTrail> {
  const { config, logger } = o;
  if (config.sink === 'off') return { sink: createNullSink(), sweeper: undefined };
  const metrics = auditMetrics(o.registry);
  // Whatever a run that did not stop cleanly left in the intent log is checked before this run adds to it.
  const intentFolder = intentsDir(config.dir);
  const previous = await readIntents(intentFolder, { skipLive: false });
  const intents = openIntentLog({ dir: intentFolder, logger });
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
    intents,
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
    const sink = createAuditWriter({ ...common, backend: withMirror(backend), query: createRedisQuery(redis) });
    await reportCrashLoss(previous, sink, metrics, logger, async (missing) => {
      await findInFiles(missing, { dir: config.dir, spoolDir: spool?.dir, since: previous.since });
      for await (const { line } of createRedisReader(redis).lines({ from: previous.since - 1000 })) {
        const id = recordIdOf(line.slice(0, 400));
        if (id) missing.delete(id);
        if (missing.size === 0) break;
      }
    });
    const sweeper =
      config.sweep_interval_s > 0
        ? startSweeper({ sink: 'redis', dir: config.dir, redis, logger, metrics }, { intervalS: config.sweep_interval_s, laneDays, defaultDays: config.retention_days })
        : undefined;
    return { sink, sweeper };
  }

  const backend = createFileBackend({ dir: config.dir, rotateBytes: config.rotate_bytes, logger });
  const sink = createAuditWriter({ ...common, backend: withMirror(backend), query: createFileQuery(backend) });
  await reportCrashLoss(previous, sink, metrics, logger, (missing) => findInFiles(missing, { dir: config.dir, spoolDir: spool?.dir, since: previous.since }));
  const sweeper =
    config.sweep_interval_s > 0
      ? startSweeper(
          { sink: 'file', dir: config.dir, logger, metrics },
          { intervalS: config.sweep_interval_s, laneDays, defaultDays: config.retention_days, activeFiles: () => backend.activeFiles() },
        )
      : undefined;
  return { sink, sweeper };
}

/**
 * The requests an earlier run answered without a record reaching the trail:
 * written as one `loss` record into the _gateway chain, counted and logged.
 * The intent segments go once that record is kept; if the check cannot be
 * made (Redis down), they stay for the next start.
 */
async function reportCrashLoss(
  previous: Intents,
  sink: AuditSink,
  metrics: AuditMetrics,
  logger: Logger,
  find: (missing: Set<string>) => Promise<void>,
): Promise<void> {
  metrics.crashLost.set(0);
  if (previous.files.length === 0) return;
  const missing = new Set(previous.ids.keys());
  try {
    // A store that does not answer (Redis down) must not hold the start up: the check waits for the next one.
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error('timed out')), CRASH_CHECK_TIMEOUT_MS)));
    await Promise.race([find(missing), timeout]).finally(() => clearTimeout(timer));
  } catch (err) {
    logger.error({ err: String(err), intents: previous.ids.size }, 'the gateway did not stop cleanly last time, and its audit records could not be checked now; the check runs again at the next start');
    return;
  }
  metrics.crashLost.set(missing.size);
  if (missing.size === 0) {
    logger.warn({ answered: previous.ids.size }, 'the gateway did not stop cleanly last time; every request it answered has its audit record');
  } else {
    metrics.dropped.labels('crash').inc(missing.size);
    const ids = [...missing];
    logger.error(
      { lost: ids.length, answered: previous.ids.size, ids: ids.slice(0, 20), since: new Date(previous.since).toISOString() },
      `AUDIT RECORDS LOST: the gateway did not stop cleanly last time and ${ids.length} answered request(s) have no audit record; a loss record in the _gateway chain names them (audit verify reports it)`,
    );
    sink.write({
      v: AUDIT_RECORD_VERSION,
      kind: 'loss',
      id: randomUUID(),
      time: new Date().toISOString(),
      reason: 'unclean_stop',
      since: new Date(previous.since).toISOString(),
      requests: ids.map((id) => ({ id, lane: previous.ids.get(id) || null })),
    });
    await sink.flush();
  }
  await removeIntents(previous.files);
}
