// Audit records mirrored to an OpenTelemetry logs pipeline (audit.otlp_logs):
// every record the sink has written is also sent, as one OTLP log record, to
// an OTLP/HTTP collector's /v1/logs, for teams whose reviewers search logs in
// a central store. The sink (file or Redis) stays the system of record: its
// chain, queries, retention and the spool are unchanged, and a collector that
// is slow or down never holds up or loses a record there. What the mirror
// cannot send (after retries, or beyond its in-memory bound) is counted in
// lanegate_audit_otlp_records_total{result="dropped"} and logged at most
// every 10 s, never dropped silently.
//
// Each log record's body is the audit record's JSON line as the sink got it
// (bodies as the lane allows, without the file chain's prev/hash), with the
// fields a log search filters on as attributes. Sent as OTLP/HTTP JSON.
import { Pool } from 'undici';
import type { Counter } from 'prom-client';
import { str } from '../../json-text.js';
import { signalUrl } from '../../telemetry/config.js';
import type { Logger } from '../../telemetry/logger.js';
import type { PendingRecord } from './pending.js';
import type { AuditBackend } from './writer.js';

export interface OtlpLogsConfig {
  /** The collector's OTLP/HTTP endpoint; /v1/logs is added unless given. */
  endpoint: string;
  headers: Record<string, string>;
  service_name: string;
}

/** Bytes of record JSON held for sending at most; beyond it records are dropped (counted). */
const MAX_HELD_BYTES = 64 << 20;
/** Record bytes per request at most (the OTLP spec suggests collectors accept 20 MiB; escaping adds a little). */
const REQUEST_BYTES = 8 << 20;
const SEND_TIMEOUT_MS = 10_000;
const RETRIES = 3;
const RETRY_BASE_MS = 500;
/** The longest Retry-After the mirror honours; a longer one is waited this long. */
const MAX_RETRY_AFTER_MS = 30_000;
const LOG_INTERVAL_MS = 10_000;
/** Statuses worth another try (the OTLP/HTTP spec's retryable ones). */
const RETRYABLE = new Set([429, 502, 503, 504]);
const HEX_TRACE_ID = /^[0-9a-f]{32}$/;
const HEX_SPAN_ID = /^[0-9a-f]{16}$/;
/** OTLP severity number INFO. */
const SEVERITY_INFO = 9;

export interface OtlpLogsMirror {
  send(records: PendingRecord[]): void;
  /** Sends what is queued and waits for it, up to `deadlineMs`; what is still unsent then is dropped (counted). */
  close(deadlineMs: number): Promise<void>;
}

function attr(key: string, value: string | number | null): string {
  if (value === null || (typeof value === 'number' && !Number.isSafeInteger(value))) return '';
  // OTLP/JSON writes 64-bit integers as decimal strings.
  return `,{"key":"${key}","value":${typeof value === 'number' ? `{"intValue":"${value}"}` : `{"stringValue":${str(value)}}`}}`;
}

/** One OTLP log record (JSON encoding) for an audit record. */
function logRecord(r: PendingRecord, observed: string): string {
  const f = r.facets;
  const nanos = `${BigInt(Math.max(0, Math.round(f.time))) * 1_000_000n}`;
  // attr() writes each attribute with a leading comma; the list drops the first.
  const attributes = (
    attr('lanegate.audit.kind', f.kind) +
    attr('lanegate.audit.chain', r.chain) +
    attr('lanegate.request_id', f.kind === 'request' ? f.id : null) +
    attr('lanegate.audit.id', f.id) +
    attr('lanegate.lane', f.lane) +
    attr('lanegate.team', f.team) +
    attr('lanegate.app', f.app) +
    attr('gen_ai.request.model', f.model) +
    attr('http.response.status_code', f.status)
  ).slice(1);
  // The log record's own trace fields (hex in OTLP/JSON), which log backends link to the trace.
  const trace = HEX_TRACE_ID.test(f.traceId ?? '') ? `,"traceId":"${f.traceId}"${HEX_SPAN_ID.test(f.spanId ?? '') ? `,"spanId":"${f.spanId}"` : ''}` : '';
  return `{"timeUnixNano":"${nanos}","observedTimeUnixNano":"${observed}"${trace},"severityNumber":${SEVERITY_INFO},"severityText":"INFO","body":{"stringValue":${JSON.stringify(r.bytes.toString('utf8'))}},"attributes":[${attributes}]}`;
}

/** Retry-After in ms (seconds or an HTTP date), capped at MAX_RETRY_AFTER_MS; 0 when absent or unreadable. */
function retryAfterMs(header: string | string[] | undefined): number {
  const value = Array.isArray(header) ? header[0] : header;
  if (!value) return 0;
  const ms = /^\d+$/.test(value.trim()) ? Number(value) * 1000 : Date.parse(value) - Date.now();
  return Number.isFinite(ms) && ms > 0 ? Math.min(ms, MAX_RETRY_AFTER_MS) : 0;
}

/** rejectedLogRecords of an OTLP partial-success answer (JSON; int64 as a string or a number), else 0. */
function rejectedOf(text: string): number {
  if (!text.includes('partialSuccess')) return 0;
  try {
    const n = Number((JSON.parse(text) as { partialSuccess?: { rejectedLogRecords?: unknown } }).partialSuccess?.rejectedLogRecords ?? 0);
    return Number.isSafeInteger(n) && n > 0 ? n : 0;
  } catch {
    return 0;
  }
}

export function createOtlpLogsMirror(config: OtlpLogsConfig, o: { records: Counter<'result'>; logger: Logger }): OtlpLogsMirror {
  const url = signalUrl(config.endpoint, 'logs');
  const pool = new Pool(url.origin, { connections: 2, keepAliveTimeout: 30_000 });
  // The content type is the mirror's to set, whatever case a configured header uses.
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  for (const [name, value] of Object.entries(config.headers)) if (name.toLowerCase() !== 'content-type') headers[name] = value;
  const records = o.records;
  const envelope = (logRecords: string) =>
    `{"resourceLogs":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":${JSON.stringify(config.service_name)}}}]},"scopeLogs":[{"scope":{"name":"lanegate.audit"},"logRecords":[${logRecords}]}]}]}`;

  let held = 0;
  /** Records handed to send() and not yet sent or dropped. */
  let queued = 0;
  let chain: Promise<void> = Promise.resolve();
  let closing = false;
  /** close() has counted every record still queued: what the chain settles afterwards is not counted again. */
  let counted = false;
  let lastLog = 0;
  let droppedSinceLog = 0;

  function dropped(count: number, why: string, logNow = false): void {
    if (count > 0) records.labels('dropped').inc(count);
    droppedSinceLog += count;
    const now = Date.now();
    if (droppedSinceLog > 0 && (logNow || now - lastLog >= LOG_INTERVAL_MS)) {
      lastLog = now;
      o.logger.warn({ endpoint: url.origin + url.pathname, dropped: droppedSinceLog, why }, 'audit records not mirrored to the OTLP logs endpoint (the audit sink has them)');
      droppedSinceLog = 0;
    }
  }

  /** Sends one request; resolves with how many records the collector rejected (partial success), throws when it took none. */
  async function post(body: string): Promise<number> {
    let lastError = '';
    let wait = 0;
    for (let attempt = 0; attempt <= RETRIES && !closing; attempt++) {
      // Unref'd: a long Retry-After never keeps a stopping process alive (close() counts what it leaves).
      if (attempt > 0) await new Promise((r) => setTimeout(r, wait || RETRY_BASE_MS * 2 ** (attempt - 1)).unref());
      wait = 0;
      try {
        const res = await pool.request({
          method: 'POST',
          path: url.pathname + url.search,
          headers,
          body,
          headersTimeout: SEND_TIMEOUT_MS,
          bodyTimeout: SEND_TIMEOUT_MS,
        });
        if (res.statusCode < 300) return rejectedOf(await res.body.text().catch(() => ''));
        await res.body.dump();
        lastError = `status ${res.statusCode}`;
        if (!RETRYABLE.has(res.statusCode)) break;
        wait = retryAfterMs(res.headers['retry-after']);
      } catch (err) {
        lastError = (err as { code?: string }).code ?? String(err);
      }
    }
    throw new Error(lastError || 'shutting down');
  }

  return {
    send(batch) {
      if (batch.length === 0) return;
      const bytes = batch.reduce((n, r) => n + r.bytes.length, 0);
      if (closing || held + bytes > MAX_HELD_BYTES) return dropped(batch.length, closing ? 'shutting down' : 'too many records waiting');
      held += bytes;
      queued += batch.length;
      // One request at a time, in order: a slow collector queues them here, bounded by MAX_HELD_BYTES.
      chain = chain.then(async () => {
        let at = 0;
        while (at < batch.length) {
          // A request holds at most REQUEST_BYTES of records (and at least one).
          let end = at + 1;
          for (let size = batch[at]!.bytes.length; end < batch.length && size + batch[end]!.bytes.length <= REQUEST_BYTES; end++) size += batch[end]!.bytes.length;
          const part = batch.slice(at, end);
          at = end;
          let rejected = part.length;
          let why = 'shutting down';
          if (!closing) {
            try {
              const observed = `${BigInt(Date.now()) * 1_000_000n}`;
              rejected = Math.min(part.length, await post(envelope(part.map((r) => logRecord(r, observed)).join(','))));
              why = 'the collector rejected some (partial success)';
            } catch (err) {
              why = (err as Error).message;
            }
          }
          if (counted) continue;
          if (rejected < part.length) records.labels('sent').inc(part.length - rejected);
          if (rejected > 0) dropped(rejected, why);
          queued -= part.length;
        }
        held -= bytes;
      });
    },
    async close(deadlineMs) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([chain, new Promise<void>((resolve) => (timer = setTimeout(resolve, deadlineMs)))]);
      clearTimeout(timer);
      closing = true;
      // What is still queued will not be sent: counted and logged now, before the process exits.
      counted = true;
      dropped(queued, 'shutting down', true);
      queued = 0;
      await pool.destroy().catch(() => {});
    },
  };
}

/** The sink, with every record it wrote also sent to the mirror. */
export function mirrored(backend: AuditBackend, mirror: OtlpLogsMirror, shutdownFlushMs: number): AuditBackend {
  return {
    kind: backend.kind,
    async write(batch) {
      const out = await backend.write(batch);
      if (out.failed.length === 0) mirror.send(batch);
      else {
        const failed = new Set(out.failed);
        mirror.send(batch.filter((r) => !failed.has(r)));
      }
      return out;
    },
    ready: () => backend.ready(),
    sync: () => backend.sync(),
    async close() {
      await backend.close();
      await mirror.close(shutdownFlushMs);
    },
  };
}
