// Whether a request may use the cache at all, and how the outcome is
// reported (context, response headers, metrics). Shared by the chat and the
// embeddings stages.
import type { RequestContext } from '../pipeline/context.js';
import { requestedCacheMode, type CacheMode } from './control.js';
import { cacheScope } from './keys.js';
import { cacheLabels } from './savings.js';
import type { CacheOutcome, CacheService } from './service.js';
import { cacheRuleFor, cacheSettings, type CacheRule, type CacheSettings } from './settings.js';

export interface CacheUse {
  cache: CacheService;
  settings: CacheSettings;
  rule: CacheRule;
  /** Who may share the entry: `shared`, `team:<team>` or `key:<id>`. */
  scope: string;
  scopeKind: 'shared' | 'team' | 'key';
  mode: Exclude<CacheMode, 'bypass'>;
  /** Why the mode is not `use` (refresh requested). */
  reason?: string;
}

/**
 * undefined: the cache is not part of this gateway (or disabled in config),
 * and the request says nothing about it. Otherwise either the way to use it,
 * or a bypass already reported.
 */
export function decideCacheUse(ctx: RequestContext): CacheUse | 'bypass' | undefined {
  const cache = ctx.services.cache;
  if (!cache) return undefined;
  const settings = cacheSettings(ctx.config);
  if (!settings.enabled) return undefined;
  const requested = requestedCacheMode(ctx.headers);
  const lane = ctx.policy?.lane;
  const scope = lane && ctx.key ? cacheScope(lane, ctx.key) : undefined;
  // The lane's `off` wins over anything the client asks for.
  if (!scope) return bypass(ctx, cache, 'lane_off');
  if (requested.mode === 'bypass') return bypass(ctx, cache, requested.reason ?? 'requested');
  const rule = cacheRuleFor(settings, ctx);
  if (!rule.enabled) return bypass(ctx, cache, 'disabled_for_model');
  if (!cache.store.available()) {
    // Redis is down: no lookup, no store, and no waiting for it.
    cache.storeFailed('get', new Error('store unreachable'));
    return bypass(ctx, cache, 'store_unavailable');
  }
  const scopeKind = lane!.cache as CacheUse['scopeKind'];
  return { cache, settings, rule, scope, scopeKind, mode: requested.mode, ...(requested.reason ? { reason: requested.reason } : {}) };
}

export function bypass(ctx: RequestContext, cache: CacheService, reason: string): 'bypass' {
  reportOutcome(ctx, cache, { status: 'bypass', reason });
  return 'bypass';
}

export function reportOutcome(ctx: RequestContext, cache: CacheService, outcome: CacheOutcome, result: string = outcome.status): void {
  ctx.cache = outcome;
  ctx.responseHeaders['x-gateway-cache'] = outcome.status;
  if (outcome.age !== undefined) ctx.responseHeaders.age = String(outcome.age);
  const { route, lane } = cacheLabels(ctx);
  cache.metrics.requests.labels(ctx.endpoint, route, lane, result).inc();
}
