// `lanegate serve`: start the gateway and stop it gracefully on SIGTERM/SIGINT.
import { setFlagsFromString } from 'node:v8';
import { resolveConfigPath } from './config/load.js';
import { startGateway } from './gateway.js';

/**
 * How far V8 lets the old generation grow past what the last full collection
 * kept before it collects again. The gateway keeps nothing per request once
 * it is over (its live heap stays ~33 MB from 10,000 to 200,000 requests),
 * but every request leaves a few KB that outlived two young collections (its
 * context, its record on the way to the audit writer) in the old generation.
 * V8's own factor rises to 4x while collections are cheap: the old generation
 * then fills to ~125 MB of such garbage between full collections, and the
 * process's memory climbs with age (150 to 220 MB after 50,000 requests,
 * bench/aged.ts). At 1.5x the old generation stays near 50-65 MB, for about
 * twice as many (short, mostly concurrent) full collections. A flag V8 does
 * not know is ignored, so a Node upgrade cannot stop the gateway starting.
 */
const HEAP_GROWING_PERCENT = 50;

export async function serveCommand(argv: string[]): Promise<void> {
  // An explicit --heap-growing-percent on the command line wins.
  if (!process.execArgv.some((a) => a.startsWith('--heap-growing-percent'))) setFlagsFromString(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`);
  const configFile = resolveConfigPath(argv, process.env);
  const port = process.env.PORT ? Number(process.env.PORT) : undefined;
  if (port !== undefined && (!Number.isInteger(port) || port < 0 || port > 65535)) {
    console.error(`PORT must be a port number, got "${process.env.PORT}"`);
    process.exit(1);
  }
  // Start-up failures (config, port in use) reach the CLI's one-line error report.
  const gateway = await startGateway({ configFile, port });
  const stop = (signal: string) => {
    gateway.logger.info({ signal }, 'shutting down');
    gateway.shutdown().then(
      () => process.exit(0),
      (err) => {
        console.error(err);
        process.exit(1);
      },
    );
  };
  process.on('SIGHUP', () => {
    gateway.logger.info('SIGHUP: reloading config');
    void gateway.reload();
  });
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
}
