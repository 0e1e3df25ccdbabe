// The command line: a thin layer over the same modules the server uses.
import { hashKey } from './auth/keys.js';
import { compileConfig } from './config/compile.js';
import { ConfigError, loadConfig, resolveConfigPath } from './config/load.js';
import { serveCommand } from './main.js';
import { createHttpClients } from './providers/http.js';

const USAGE = `Usage: lanegate <command> [options]

Commands:
  serve [--config PATH]          start the gateway (default command)
  check-config [--config PATH]   validate the config without serving
  hash-key <key>                 print the sha256 to put in a key's config entry

The config path defaults to $GATEWAY_CONFIG or config/gateway.yaml.`;

async function checkConfig(argv: string[]): Promise<number> {
  const file = resolveConfigPath(argv, process.env);
  try {
    const loaded = await loadConfig(file);
    const clients = createHttpClients();
    const compiled = compileConfig(loaded.config, loaded.file, clients, loaded.policies);
    await clients.close();
    console.log(`${file}: OK`);
    console.log(`  models: ${[...compiled.models.keys()].join(', ') || '(none enabled)'}`);
    for (const [name, providers] of compiled.unavailableModels) console.log(`  model ${name}: no enabled provider (${providers.join(', ')} need credentials)`);
    console.log(`  keys: ${loaded.config.keys.length}, auth: ${compiled.auth.mode}`);
    return 0;
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(err.message);
      return 1;
    }
    throw err;
  }
}

export async function runCli(argv: string[]): Promise<number | undefined> {
  const [command = 'serve', ...rest] = argv;
  switch (command) {
    case 'serve':
      await serveCommand(rest);
      return undefined;
    case 'check-config':
      return checkConfig(rest);
    case 'hash-key': {
      const key = rest[0];
      if (!key) {
        console.error('Usage: lanegate hash-key <key>');
        return 2;
      }
      console.log(hashKey(key));
      return 0;
    }
    case 'help':
    case '--help':
    case '-h':
      console.log(USAGE);
      return 0;
    default:
      if (command.startsWith('--')) {
        await serveCommand(argv);
        return undefined;
      }
      console.error(`Unknown command "${command}".\n\n${USAGE}`);
      return 2;
  }
}

const code = await runCli(process.argv.slice(2));
if (code !== undefined) process.exitCode = code;
