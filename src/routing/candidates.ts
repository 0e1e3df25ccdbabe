import type { CompiledModel } from '../config/compile.js';
import { GatewayError } from '../errors.js';
import type { RequestContext } from '../pipeline/context.js';
import type { Deployment } from '../providers/types.js';
import { orderDeployments } from './balance.js';

/**
 * Pipeline stage: the deployments to try, in order: the model's own (ordered
 * by its balancing strategy), then each fallback model's.
 */
export function planCandidates(ctx: RequestContext): void {
  ctx.candidates = candidatesFor(ctx, ctx.model!);
  if (ctx.candidates.length === 0) {
    const lane = ctx.policy!.lane;
    throw new GatewayError(
      'lane_violation',
      `Lane "${lane.name}" allows only ${lane.deploymentRule.join(', ')}; model "${ctx.model!.name}" has no deployment there. Use a model the lane allows.`,
      { param: 'model' },
    );
  }
}

export function candidatesFor(ctx: RequestContext, model: CompiledModel, fallbacks = true): Deployment[] {
  const seen = new Set<string>();
  const out: Deployment[] = [];
  // A fallback never crosses into a deployment the lane forbids.
  const lane = ctx.policy?.lane;
  const add = (m: CompiledModel) => {
    for (const d of orderDeployments(m, ctx.services.health)) {
      if (seen.has(d.id) || (lane && !lane.allowsDeployment(d))) continue;
      seen.add(d.id);
      out.push(d);
    }
  };
  add(model);
  if (fallbacks) {
    for (const name of model.fallbacks) {
      const fallback = ctx.config.models.get(name);
      if (fallback) add(fallback);
    }
  }
  return out;
}
