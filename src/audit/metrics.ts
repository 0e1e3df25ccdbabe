// The audit trail's own metrics, on the gateway's registry. Anything lost is
// counted here, by reason: "nothing dropped silently".
import { Counter, Gauge, type Registry } from 'prom-client';
import { FastCounter, FastGauge } from '../telemetry/fast-metrics.js';

export interface AuditMetrics {
  queueDepth: Gauge;
  dropped: Counter<'reason'>;
  written: Counter<'sink'>;
  sinkUp: Gauge<'sink'>;
  spoolBytes: Gauge;
  spoolRecords: Gauge;
  refusing: Gauge;
  refusedRequests: Counter;
  purged: Counter<'chain' | 'reason'>;
  /** Records mirrored to audit.otlp_logs: sent, or dropped. Zero while no mirror is configured. */
  otlpRecords: Counter<'result'>;
  /** Answered requests whose records the last unclean stop lost (set at start). */
  crashLost: Gauge;
}

/** Every reason a record can be lost for, so each series exists at 0 before its first loss. */
export const AUDIT_DROP_REASONS = ['queue_full', 'spool_full', 'disk_full', 'sink_error', 'spool_error', 'unserializable', 'closed', 'crash'] as const;

const cache = new WeakMap<Registry, AuditMetrics>();

/** One set per registry: a gateway that restarts its sink in-process reuses them. */
export function auditMetrics(registry: Registry): AuditMetrics {
  const existing = cache.get(registry);
  if (existing) return existing;
  const registers = [registry];
  const m: AuditMetrics = {
    queueDepth: new FastGauge({ name: 'lanegate_audit_queue_depth', help: 'Audit records in memory waiting to be written.', registers }),
    dropped: new FastCounter({
      name: 'lanegate_audit_dropped_total',
      help: 'Audit records lost, by reason (queue_full, spool_full, disk_full, sink_error, spool_error, closed, crash: found at start after an unclean stop). Anything above zero needs attention.',
      labelNames: ['reason'],
      registers,
    }),
    written: new FastCounter({ name: 'lanegate_audit_records_written_total', help: 'Audit records the sink accepted.', labelNames: ['sink'], registers }),
    sinkUp: new FastGauge({ name: 'lanegate_audit_sink_up', help: '1 while the audit sink accepts writes; 0 while records go to the spool.', labelNames: ['sink'], registers }),
    spoolBytes: new FastGauge({ name: 'lanegate_audit_spool_bytes', help: 'Bytes of audit records waiting in the local spool.', registers }),
    spoolRecords: new FastGauge({ name: 'lanegate_audit_spool_records', help: 'Audit records waiting in the local spool.', registers }),
    refusing: new FastGauge({
      name: 'lanegate_audit_refusing',
      help: '1 while new requests are refused because audit records cannot be kept (audit.on_full: refuse).',
      registers,
    }),
    refusedRequests: new FastCounter({
      name: 'lanegate_audit_refused_requests_total',
      help: 'Requests refused with 503 audit_unavailable because audit records could not be kept.',
      registers,
    }),
    purged: new FastCounter({
      name: 'lanegate_audit_purged_records_total',
      help: 'Audit records removed by retention or a manual purge, by chain (lane) and reason.',
      labelNames: ['chain', 'reason'],
      registers,
    }),
    otlpRecords: new FastCounter({
      name: 'lanegate_audit_otlp_records_total',
      help: 'Audit records mirrored to the OTLP logs endpoint (audit.otlp_logs): sent, or dropped (refused or unreachable after retries, rejected in a partial success, too many waiting, or unsent at shutdown). The sink still has them.',
      labelNames: ['result'],
      registers,
    }),
    crashLost: new FastGauge({
      name: 'lanegate_audit_crash_lost_records',
      help: 'Requests answered before the last unclean stop (SIGKILL, OOM, host crash) whose audit records were lost, found at start; a loss record in the _gateway chain names them. Alert on > 0.',
      registers,
    }),
  };
  // increase() over a series that appears with its first loss sees no
  // increase at all: the series exist at 0 from the start, so the first lost
  // record shows on the dashboard.
  for (const reason of AUDIT_DROP_REASONS) m.dropped.labels(reason).inc(0);
  for (const result of ['sent', 'dropped']) m.otlpRecords.labels(result).inc(0);
  cache.set(registry, m);
  return m;
}
