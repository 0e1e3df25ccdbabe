// `lanegate serve`: start the gateway and stop it gracefully on SIGTERM/SIGINT.
import { resolveConfigPath } from './config/load.js';
import { startGateway } from './gateway.js';

export async function serveCommand(argv: string[]): Promise<void> {
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
