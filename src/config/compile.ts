// Turns a validated config into plain lookups built once per load. A reload
// compiles a new CompiledConfig and swaps one reference; requests in flight
// keep the one they started with.
import { createAnthropicAdapter } from '../providers/anthropic/index.js';
import type { HttpClients } from '../providers/http.js';
import { createMockAdapter } from '../providers/mock/index.js';
import { createOpenAIAdapter } from '../providers/openai/index.js';
import type { Deployment, ProviderAdapter } from '../providers/types.js';
import { compileLimits, type CompiledLimits } from '../budget/compile.js';
import { compilePolicies, type CompiledPolicies } from '../policy/compile.js';
import type { PolicySet } from '../policy/load.js';
import { emptyCatalog, type PromptCatalog } from '../prompts/catalog.js';
import type { Person } from '../auth/people.js';
import { sha256Hex } from '../sha256.js';
import { compileRoutes, type CompiledRoute } from '../routing/compile.js';
import { DEFAULT_RATE_LIMIT_COOLDOWN, DEFAULT_RESPONSE_LIMITS, type DegradeConfig, type GatewayConfig, type ProviderConfig, type SloConfig } from './schema.js';

export interface KeyInfo {
  id: string;
  app: string;
  team: string;
  /** undefined: every model. */
  models: ReadonlySet<string> | undefined;
  /** The lane requests start in. */
  lane: string;
  /** Lanes requests may ask for with `x-gateway-lane`. */
  lanes: ReadonlySet<string>;
}

export interface CompiledModel {
  name: string;
  type: 'chat' | 'embedding';
  description: string | undefined;
  balance: 'priority' | 'weighted' | 'least_latency' | 'least_busy';
  /** Enabled deployments, in the order listed. */
  deployments: Deployment[];
  /** Models tried after this one's deployments, in order. */
  fallbacks: string[];
  degrade: DegradeConfig | undefined;
  slo: SloConfig | undefined;
}

export interface CompiledConfig {
  file: string;
  loadedAt: Date;
  raw: GatewayConfig;
  server: GatewayConfig['server'];
  logging: GatewayConfig['logging'];
  audit: GatewayConfig['audit'];
  auth: { mode: 'keys' | 'none'; adminKeyHash: Buffer | undefined; anonymous: KeyInfo };
  /** sha256 hex of the key -> the key's identity and the raw digest to compare. */
  keysByHash: ReadonlyMap<string, { key: KeyInfo; digest: Buffer }>;
  /** sha256 hex of a person's key -> who they are and the raw digest to compare (src/auth/people.ts). */
  peopleByHash: ReadonlyMap<string, { person: Person; digest: Buffer }>;
  console: GatewayConfig['console'];
  models: ReadonlyMap<string, CompiledModel>;
  routes: ReadonlyMap<string, CompiledRoute>;
  policies: CompiledPolicies;
  limits: CompiledLimits;
  redis: GatewayConfig['redis'];
  /** Models configured but with no enabled deployment (no provider credentials). */
  unavailableModels: ReadonlyMap<string, string[]>;
  adapters: ReadonlyMap<string, ProviderAdapter>;
  disabledProviders: string[];
  /** Prompt templates, pins, tool schemas and eval sets, compiled at load. */
  prompts: PromptCatalog;
}

export function isProviderEnabled(provider: ProviderConfig): boolean {
  if (provider.type === 'mock') return true;
  return !provider.requires_key || provider.api_key.length > 0;
}

export function compileConfig(config: GatewayConfig, file: string, clients: HttpClients, policySet: PolicySet, prompts: PromptCatalog = emptyCatalog(config.prompts)): CompiledConfig {
  const policies = compilePolicies(policySet);
  // By default a key may use its lane and every stricter one.
  const lanesFrom = (lane: string) => {
    const rank = policies.lanes.get(lane)?.rank ?? 0;
    return new Set(policies.order.filter((l) => policies.lanes.get(l)!.rank >= rank));
  };
  const adapters = new Map<string, ProviderAdapter>();
  const disabledProviders: string[] = [];
  for (const [name, provider] of Object.entries(config.providers)) {
    if (!isProviderEnabled(provider)) {
      disabledProviders.push(name);
      continue;
    }
    adapters.set(name, createAdapter(name, provider, clients));
  }

  const models = new Map<string, CompiledModel>();
  const unavailableModels = new Map<string, string[]>();
  for (const [name, model] of Object.entries(config.models)) {
    const deployments: Deployment[] = [];
    const enabled = model.deployments.filter((d) => adapters.has(d.provider));
    const active = enabled.some((d) => !d.standby) ? enabled.filter((d) => !d.standby) : enabled;
    for (const d of active) {
      const provider = config.providers[d.provider]!;
      deployments.push({
        id: `${d.provider}/${d.model}`,
        providerName: d.provider,
        provider,
        model: d.model,
        params: d.params,
        weight: d.weight,
        timeouts: { ...provider.timeouts, ...d.timeouts },
        retry: { ...provider.retry, ...d.retry },
        breaker: { ...provider.breaker, ...d.breaker },
        rateLimitCooldown: { ...('rate_limit_cooldown' in provider ? provider.rate_limit_cooldown : DEFAULT_RATE_LIMIT_COOLDOWN), ...d.rate_limit_cooldown },
        responseLimits: { ...('response_limits' in provider ? provider.response_limits : DEFAULT_RESPONSE_LIMITS), ...d.response_limits },
      });
    }
    if (deployments.length === 0) unavailableModels.set(name, [...new Set(model.deployments.map((d) => d.provider))]);
    else {
      models.set(name, {
        name,
        type: model.type,
        description: model.description,
        balance: model.balance,
        deployments,
        fallbacks: model.fallbacks,
        degrade: model.degrade,
        slo: model.slo,
      });
    }
  }

  const keysByHash = new Map<string, { key: KeyInfo; digest: Buffer }>();
  for (const k of config.keys) {
    const lane = k.lane ?? policies.defaultLane;
    const key: KeyInfo = {
      id: k.id,
      app: k.app,
      team: k.team,
      models: k.models.includes('*') ? undefined : new Set(k.models),
      lane,
      lanes: k.lanes ? new Set([lane, ...k.lanes]) : lanesFrom(lane),
    };
    keysByHash.set(k.sha256, { key, digest: Buffer.from(k.sha256, 'hex') });
  }

  const peopleByHash = new Map<string, { person: Person; digest: Buffer }>();
  for (const p of config.people) {
    const digest = p.sha256 ?? sha256Hex(p.key ?? '');
    peopleByHash.set(digest, { person: { name: p.name, role: p.role }, digest: Buffer.from(digest, 'hex') });
  }

  return {
    file,
    loadedAt: new Date(),
    peopleByHash,
    console: config.console,
    // A person's plain key (from the environment) is not kept past this point: only its digest.
    raw: { ...config, people: config.people.map((p) => ({ name: p.name, role: p.role, sha256: p.sha256 ?? sha256Hex(p.key ?? '') })) },
    server: config.server,
    logging: config.logging,
    audit: config.audit,
    auth: {
      mode: config.auth.mode,
      adminKeyHash: config.auth.admin_key_sha256 ? Buffer.from(config.auth.admin_key_sha256, 'hex') : undefined,
      anonymous: {
        id: 'anonymous',
        app: config.auth.anonymous.app,
        team: config.auth.anonymous.team,
        models: undefined,
        lane: policies.defaultLane,
        lanes: lanesFrom(policies.defaultLane),
      },
    },
    keysByHash,
    models,
    routes: compileRoutes(config.routes),
    policies,
    limits: compileLimits(config),
    redis: config.redis,
    unavailableModels,
    adapters,
    disabledProviders,
    prompts,
  };
}

function createAdapter(name: string, provider: ProviderConfig, clients: HttpClients): ProviderAdapter {
  switch (provider.type) {
    case 'openai':
      return createOpenAIAdapter(name, provider, clients);
    case 'anthropic':
      return createAnthropicAdapter(name, provider, clients);
    case 'mock':
      return createMockAdapter(name, provider);
  }
}
