import type { Reply, RequestContext, Stage } from './context.js';

/** Runs stages in order until one returns a reply. Sync stages cost no await. */
export async function runPipeline(stages: readonly Stage[], ctx: RequestContext): Promise<Reply> {
  for (const stage of stages) {
    let result = stage(ctx);
    if (result instanceof Promise) result = await result;
    if (result) return result;
  }
  throw new Error(`pipeline for ${ctx.endpoint} ended without a reply`);
}
