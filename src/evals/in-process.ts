// The gateway's request machinery without its HTTP server, for commands that
// run requests in this process (`lanegate eval`, `lanegate promote`): the
// config compiled as `serve` compiles it, the same providers, routing,
// breakers and budgets, and nothing listening on a port.
import type { CompiledConfig } from '../config/compile.js';
import { compileConfig } from '../config/compile.js';
import { loadConfig, type LoadedConfig } from '../config/load.js';
import type { Services } from '../pipeline/context.js';
import { createHttpClients } from '../providers/http.js';
import { createServices } from '../services.js';

export interface InProcessGateway {
  loaded: LoadedConfig;
  config: CompiledConfig;
  services: Services;
  close(): Promise<void>;
}

export async function openInProcess(configFile: string, env: NodeJS.ProcessEnv = process.env): Promise<InProcessGateway> {
  const loaded = await loadConfig(configFile, env);
  const clients = createHttpClients();
  const config = compileConfig(loaded.config, loaded.file, clients, loaded.policies, loaded.prompts);
  // Errors reach the report; createServices' silent logger only keeps provider chatter off the table.
  const services = createServices({ config: () => config });
  return {
    loaded,
    config,
    services,
    close: () => clients.close(),
  };
}
