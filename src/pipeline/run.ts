import type { Reply, RequestContext, Stage } from './context.js';

/**
 * Runs stages in order. A stage that returns a reply ends the request there
 * (a cache hit); otherwise the reply is what the stages left on the context.
 * Sync stages cost no await.
 */
export async function runPipeline(stages: readonly Stage[], ctx: RequestContext): Promise<Reply> {
  for (const stage of stages) {
    // A traced request runs its stages in spans; an untraced one pays one property check.
    let result = ctx.trace ? ctx.trace.stage(stage, ctx) : stage(ctx);
    if (result instanceof Promise) result = await result;
    if (result) return result;
  }
  if (!ctx.reply) throw new Error(`pipeline for ${ctx.endpoint} ended without a reply`);
  return ctx.reply;
}
