// The `audit:` section of config/gateway.yaml. Audit settings shape the
// process (files held open, a spool, a sweeper), so they need a restart.
import { z } from 'zod';
import { otlpEndpointSchema } from '../telemetry/config.js';

const MIB = 1024 * 1024;

export const auditConfigSchema = z
  .strictObject({
    /** `file` (default): chained JSONL files; `redis`: Redis Streams (needs redis.url); `off`: no audit trail. */
    sink: z.enum(['file', 'redis', 'off']).default('file'),
    /** Folder of the JSONL files (file sink). One gateway per folder: give replicas their own. */
    dir: z.string().min(1).default('./data/audit'),
    /** Records held in memory between the request and the sink. */
    queue_size: z.number().int().positive().default(10_000),
    /** Most records written in one go. */
    batch_size: z.number().int().positive().max(10_000).default(512),
    /** A file is closed and the next one started once it reaches this size (and at every UTC midnight). */
    rotate_bytes: z.number().int().min(4096).default(64 * MIB),
    spool: z
      .strictObject({
        /** Where records wait while the sink is slow or down. Default: `<dir>-spool`, beside the audit folder. */
        dir: z.string().min(1).optional(),
        /** 0 turns spooling off: a failing sink then follows on_full at once. */
        max_bytes: z.number().int().min(0).default(1024 * MIB),
      })
      .prefault({}),
    /**
     * When records can be kept neither by the sink nor in the spool (spool full,
     * disk full, queue full): `serve` keeps answering and counts every lost
     * record in lanegate_audit_dropped_total; `refuse` answers new requests
     * with 503 audit_unavailable until records can be kept again.
     */
    on_full: z.enum(['serve', 'refuse']).default('serve'),
    /** Retention of records that have no lane (refused before a lane was chosen) or whose lane no longer exists. */
    retention_days: z.number().int().positive().max(36_500).default(90),
    /** How often expired records are removed (each lane's audit.retention_days). 0 turns the sweeper off. */
    sweep_interval_s: z.number().int().min(0).default(3600),
    /** How long shutdown may spend sending spooled records before leaving them for the next start. */
    shutdown_flush_ms: z.number().int().min(0).default(5000),
    /**
     * Every record the sink writes is also sent, as one OTLP log record, to
     * this OTLP/HTTP collector (`<endpoint>/v1/logs`); '' (the default) is off.
     * The sink stays the system of record: what the collector does not take
     * is counted and logged, never retried from the sink.
     */
    otlp_logs: z
      .strictObject({
        endpoint: otlpEndpointSchema,
        /** Extra headers for the collector (an API key, say: use ${ENV} interpolation). */
        headers: z.record(z.string(), z.string()).default({}),
        service_name: z.string().min(1).default('lanegate'),
      })
      .prefault({}),
    redis: z
      .strictObject({
        /** XADD ... MAXLEN ~ max_len per lane stream: the most entries a stream keeps. */
        max_len: z.number().int().positive().default(1_000_000),
      })
      .prefault({}),
  })
  .prefault({});

export type AuditConfig = z.infer<typeof auditConfigSchema>;

/** The spool folder: configured, or beside the audit folder (never inside it, where readers of *.jsonl would see it). */
export function spoolDir(config: AuditConfig): string {
  return config.spool.dir ?? `${config.dir.replace(/\/+$/, '')}-spool`;
}
