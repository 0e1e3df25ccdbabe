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
