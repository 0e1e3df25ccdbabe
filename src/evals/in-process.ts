// The gateway's request machinery without its HTTP server, for commands that
// run requests in this process (`lanegate eval`, `lanegate promote`): the
// config compiled as `serve` compiles it, the same providers, routing,
// breakers and budgets, and nothing listening on a port.
import type { CompiledConfig } from '../config/compile.js';
import { compileConfig } from '../config/compile.js';
import { loadConfig, type LoadedConfig } from '../config/load.js';
import { createBudgetServices } from '../budget/services.js';
import type { Services } from '../pipeline/context.js';
import { createMemoryApprovalStore } from '../policy/approvals.js';
import { createHttpClients } from '../providers/http.js';
import { createHealthRegistry } from '../routing/health.js';
import { createLogger } from '../telemetry/logger.js';
import { createMetrics } from '../telemetry/metrics.js';

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
  // Errors reach the report; the logger only keeps provider chatter off the table.
  const logger = createLogger({ level: 'silent' });
  const metrics = createMetrics({ defaultMetrics: false });
  const services: Services = {
    health: createHealthRegistry(),
    metrics,
    logger,
    redis: undefined,
    approvals: createMemoryApprovalStore(),
    budget: createBudgetServices({ redis: undefined, config: () => config, logger }),
  };
  return {
    loaded,
    config,
    services,
    close: () => clients.close(),
  };
}
