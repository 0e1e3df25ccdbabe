// A real pino logger (the gateway's createLogger) writing into memory, for
// tests that read what was logged.
import { Writable } from 'node:stream';
import { createLogger, type Logger } from '../../src/telemetry/logger.js';

export function memoryLogger(level = 'info'): { logger: Logger; text: () => string } {
  let written = '';
  const destination = new Writable({
    write(chunk: Buffer, _enc, done) {
      written += chunk.toString('utf8');
      done();
    },
  });
  const logger = createLogger({ level, destination: destination as unknown as Parameters<typeof createLogger>[0]['destination'] });
  return { logger, text: () => written };
}
