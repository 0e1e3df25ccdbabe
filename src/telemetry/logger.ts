// Structured JSON logs with pino. Secrets never reach a log line: requests are
// logged by id and outcome, never with headers or bodies, and the redaction
// below is a second line of defence for anything passed by mistake.
import pino, { type DestinationStream, type Logger } from 'pino';
import { bool, num, str } from '../json-text.js';

export type { Logger };

// Fixed paths only: wildcard paths make pino walk every logged object.
const REDACT = ['authorization', 'api_key', 'apiKey', 'headers.authorization', 'headers["api-key"]', 'headers["x-api-key"]', 'config.api_key'];

export interface LoggerOptions {
  level: string;
  /** Defaults to an asynchronous stdout writer. */
  destination?: DestinationStream;
}

export function createLogger(options: LoggerOptions): Logger {
  const destination = options.destination ?? pino.destination({ dest: 1, sync: false });
  return pino(
    {
      level: options.level,
      base: { service: 'lanegate' },
      redact: { paths: REDACT, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    destination,
  );
}

interface AccessLines {
  stream: DestinationStream;
  /** Lines waiting to be written, as UTF-8 outside the JS heap. */
  buffer: Buffer;
  used: number;
}

// Access lines go out together: every FLUSH_MS, or as soon as FLUSH_BYTES are
// waiting. One write per request cost more than building the line. They wait
// as bytes, not strings: strings held for tens of milliseconds outlived
// young-generation collections and were copied by every one.
const FLUSH_MS = 50;
const FLUSH_BYTES = 32 * 1024;
const BUFFER_BYTES = 64 * 1024;

const accessLines = new WeakMap<Logger, AccessLines>();

/** What an access line says of a request; members left undefined are left out of the line. */
export interface AccessFields {
  requestId: string;
  endpoint: string;
  key?: string | undefined;
  model?: string | undefined;
  lane?: string | undefined;
  rule?: string | undefined;
  deployment?: string | undefined;
  stream: boolean;
  status: number;
  code?: string | undefined;
  ms?: number | undefined;
  clientDisconnected?: true | undefined;
}

/** The line's members after the logger's own (level, time, service), in this order. */
function accessMembers(f: AccessFields): string {
  let out = `,"requestId":${str(f.requestId)},"endpoint":${str(f.endpoint)}`;
  if (f.key !== undefined) out += `,"key":${str(f.key)}`;
  if (f.model !== undefined) out += `,"model":${str(f.model)}`;
  if (f.lane !== undefined) out += `,"lane":${str(f.lane)}`;
  if (f.rule !== undefined) out += `,"rule":${str(f.rule)}`;
  if (f.deployment !== undefined) out += `,"deployment":${str(f.deployment)}`;
  out += `,"stream":${bool(f.stream)},"status":${num(f.status)}`;
  if (f.code !== undefined) out += `,"code":${str(f.code)}`;
  if (f.ms !== undefined) out += `,"ms":${num(f.ms)}`;
  if (f.clientDisconnected) out += ',"clientDisconnected":true';
  return out;
}

/**
 * The access log line of a finished request, in the same JSON shape as the
 * logger's own lines. pino's generic path (serializers, redaction, key-by-key
 * encoding, a write per line) was a tenth of a request's CPU; an access line
 * holds only fixed fields the gateway sets (ids from config, the model name
 * asked for, statuses and timings), never headers, keys or bodies, so it
 * needs none of that. Lines are written in batches (see FLUSH_MS); shutdown
 * writes what is left.
 */
export function writeAccessLine(logger: Logger, fields: AccessFields): void {
  if (!logger.isLevelEnabled('info')) return;
  let lines = accessLines.get(logger);
  if (!lines) {
    lines = { stream: (logger as unknown as Record<symbol, DestinationStream>)[pino.symbols.streamSym]!, buffer: Buffer.allocUnsafe(BUFFER_BYTES), used: 0 };
    accessLines.set(logger, lines);
  }
  const line = `{"level":"info","time":"${new Date().toISOString()}","service":"lanegate"${accessMembers(fields)},"msg":"request"}\n`;
  // A UTF-16 unit is at most 3 bytes of UTF-8.
  if (lines.used + line.length * 3 > BUFFER_BYTES) {
    flushAccessLines(logger);
    if (line.length * 3 > BUFFER_BYTES) {
      lines.stream.write(line);
      return;
    }
  }
  if (lines.used === 0) setTimeout(flushAccessLines, FLUSH_MS, logger).unref();
  lines.used += lines.buffer.write(line, lines.used);
  if (lines.used >= FLUSH_BYTES) flushAccessLines(logger);
}

/** Writes the access lines not yet written (shutdown calls it before the last log line). */
export function flushAccessLines(logger: Logger): void {
  const lines = accessLines.get(logger);
  if (!lines || lines.used === 0) return;
  const text = lines.buffer.toString('utf8', 0, lines.used);
  lines.used = 0;
  lines.stream.write(text);
}
