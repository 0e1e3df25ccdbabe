// Structured JSON logs with pino. Secrets never reach a log line: requests are
// logged by id and outcome, never with headers or bodies, and the redaction
// below is a second line of defence for anything passed by mistake.
import pino, { type DestinationStream, type Logger } from 'pino';

export type { Logger };

// Fixed paths only: wildcard paths make pino walk every logged object.
const REDACT = ['authorization', 'api_key', 'apiKey', 'headers.authorization', 'headers["api-key"]', 'headers["x-api-key"]', 'config.api_key'];

export interface LoggerOptions {
  level: string;
  /** Defaults to an asynchronous stdout writer. */
  destination?: DestinationStream;
}

// Access log lines are gathered up to this many bytes per write (one write
// per ~15 lines at full load instead of one per line), and flushed at least
// every FLUSH_MS so a quiet gateway's lines still show up at once. pino
// flushes what is left when the process exits.
const BUFFER_BYTES = 4096;
const FLUSH_MS = 250;

export function createLogger(options: LoggerOptions): Logger {
  let destination = options.destination;
  if (!destination) {
    const stdout = pino.destination({ dest: 1, sync: false, minLength: BUFFER_BYTES });
    setInterval(() => stdout.flush(), FLUSH_MS).unref();
    destination = stdout;
  }
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

const streams = new WeakMap<Logger, DestinationStream>();

/**
 * The access log line of a finished request, in the same JSON shape as the
 * logger's own lines, written straight to its destination. pino's generic
 * path (serializers, redaction, key-by-key encoding) was a tenth of a
 * request's CPU; an access line holds only fixed fields the gateway sets
 * (ids from config, the model name asked for, statuses and timings), never
 * headers, keys or bodies, so it needs none of that.
 */
export function writeAccessLine(logger: Logger, fields: Record<string, unknown>): void {
  if (!logger.isLevelEnabled('info')) return;
  let stream = streams.get(logger);
  if (!stream) {
    stream = (logger as unknown as Record<symbol, DestinationStream>)[pino.symbols.streamSym]!;
    streams.set(logger, stream);
  }
  const body = JSON.stringify(fields);
  stream.write(`{"level":"info","time":"${new Date().toISOString()}","service":"lanegate"${body.length > 2 ? `,${body.slice(1, -1)}` : ''},"msg":"request"}\n`);
}
