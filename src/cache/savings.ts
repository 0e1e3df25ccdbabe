// What a hit saved: the tokens the answer carried, priced like the deployment
// that answered it originally (the budget module's price book), so finance
// sees the cache's worth next to the spend.
import type { Usage } from '../api/schemas.js';
import { costNano } from '../budget/pricing.js';
import type { RequestContext } from '../pipeline/context.js';
import type { Deployment } from '../providers/types.js';
import type { CacheService } from './service.js';

function findDeployment(ctx: RequestContext, id: string): Deployment | undefined {
  const own = ctx.candidates.find((d) => d.id === id);
  if (own) return own;
  for (const model of ctx.config.models.values()) {
    const d = model.deployments.find((x) => x.id === id);
    if (d) return d;
  }
  // The deployment left the config since: price like what would answer now.
  return ctx.candidates[0];
}

export function cacheLabels(ctx: RequestContext): { route: string; lane: string } {
  return { route: ctx.route?.name ?? ctx.model?.name ?? 'unknown', lane: ctx.lane ?? 'none' };
}

export function recordSavings(cache: CacheService, ctx: RequestContext, deploymentId: string, usage: Pick<Usage, 'prompt_tokens' | 'completion_tokens'>): void {
  const { route, lane } = cacheLabels(ctx);
  cache.metrics.savedTokens.labels(route, lane, 'input').inc(usage.prompt_tokens);
  if (usage.completion_tokens > 0) cache.metrics.savedTokens.labels(route, lane, 'output').inc(usage.completion_tokens);
  const deployment = findDeployment(ctx, deploymentId);
  if (!deployment) return;
  const nano = costNano(ctx.config.limits.prices.priceOf(deployment), usage);
  if (nano > 0) cache.metrics.savedUsd.labels(route, lane).inc(nano / 1e9);
}
