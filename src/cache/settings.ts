// The cache settings a request runs with: the `cache:` section, overridden by
// the model's `cache:`, overridden by the route's. Compiled once per config
// load (memoised on the compiled config, which a reload replaces whole).
import type { CompiledConfig } from '../config/compile.js';
import type { RequestContext } from '../pipeline/context.js';
import type { CacheRuleConfig } from './schema.js';

export interface CacheSettings {
  enabled: boolean;
  defaultTtlMs: number;
  maxEntryBytes: number;
  singleFlightTimeoutMs: number;
  models: ReadonlyMap<string, CacheRuleConfig>;
  routes: ReadonlyMap<string, CacheRuleConfig>;
}

export interface CacheRule {
  enabled: boolean;
  ttlMs: number;
  allowNondeterministic: boolean;
}

const compiled = new WeakMap<CompiledConfig, CacheSettings>();

export function cacheSettings(config: CompiledConfig): CacheSettings {
  let settings = compiled.get(config);
  if (settings) return settings;
  const raw = config.raw;
  const c = raw.cache;
  const rules = (entries: Array<[string, { cache?: CacheRuleConfig | undefined }]>) => new Map(entries.flatMap(([name, v]) => (v.cache ? [[name, v.cache] as const] : [])));
  settings = {
    enabled: c.enabled,
    defaultTtlMs: c.default_ttl_seconds * 1000,
    maxEntryBytes: c.max_entry_bytes,
    singleFlightTimeoutMs: c.single_flight_timeout_ms,
    models: rules(Object.entries(raw.models)),
    routes: rules(Object.entries(raw.routes)),
  };
  compiled.set(config, settings);
  return settings;
}

/** The rule for this request's model, and its route's when it came through one. */
export function cacheRuleFor(settings: CacheSettings, ctx: RequestContext): CacheRule {
  const model = ctx.model ? settings.models.get(ctx.model.name) : undefined;
  const route = ctx.route && ctx.route.name !== ctx.model?.name ? settings.routes.get(ctx.route.name) : undefined;
  const ttl = route?.ttl_seconds ?? model?.ttl_seconds;
  return {
    enabled: route?.enabled ?? model?.enabled ?? true,
    ttlMs: ttl === undefined ? settings.defaultTtlMs : ttl * 1000,
    allowNondeterministic: route?.allow_nondeterministic ?? model?.allow_nondeterministic ?? false,
  };
}
