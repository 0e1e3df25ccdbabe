// The one runner. Every caller (the HTTP server, `lanegate eval`, prompt
// shadow runs, `explain`) runs a request's phases through here: the request
// stages up to a reply, the reply stages on whatever reply came (a cache
// hit's too), and, once the response is over, the after stages.
import type { Reply, RequestContext } from './context.js';
import type { Pipeline, RequestEnd, RequestStage } from './stage.js';

/**
 * Runs the request stages, then the reply stages, and returns the reply to
 * send. A request stage that returns a reply (a cache hit) ends the first
 * phase there. Sync stages cost no await.
 */
export async function runRequest(pipeline: Pipeline, ctx: RequestContext): Promise<Reply> {
  const reply = await runStages(pipeline.request, ctx);
  if (!reply) throw new Error(`pipeline for ${ctx.endpoint} ended without a reply`);
  ctx.reply = reply;
  if (reply.kind === 'json') {
    for (const stage of pipeline.reply) {
      if (!stage.json) continue;
      const result = stage.json(ctx, reply);
      if (result instanceof Promise) await result;
    }
  } else {
    // Each stage wraps the chunks the one before it passes on: chunks go
    // through the stages in the order they are declared.
    let chunks = reply.chunks;
    for (const stage of pipeline.reply) if (stage.stream) chunks = stage.stream(ctx, chunks);
    reply.chunks = chunks;
  }
  return reply;
}

/**
 * Runs request stages in order until one returns a reply; otherwise the
 * reply is what the stages left on the context, if any. `explain` runs a
 * prefix of a pipeline this way and reads the context instead.
 */
export async function runStages(stages: readonly RequestStage[], ctx: RequestContext): Promise<Reply | undefined> {
  for (const stage of stages) {
    // A traced request runs its stages in spans; an untraced one pays one property check.
    let result = ctx.trace ? ctx.trace.stage(stage, ctx) : stage.run(ctx);
    if (result instanceof Promise) result = await result;
    if (result) return result;
  }
  return ctx.reply;
}

/**
 * The after phase, once the response is over: runs every after stage in
 * order. Returns a promise only when some stage left work in flight (budget
 * settlement), for callers that want to wait for it (`lanegate eval`); the
 * server does not.
 */
export function finishRequest(pipeline: Pipeline, ctx: RequestContext, end: RequestEnd): Promise<void> | undefined {
  // What budget run limits arm for the request's lifetime (timers, concurrency counts).
  for (const cleanup of ctx.cleanups) cleanup();
  let pending: Array<Promise<void>> | undefined;
  for (const stage of pipeline.after) {
    const result = stage.run(ctx, end);
    if (result instanceof Promise) (pending ??= []).push(result);
  }
  if (!pending) return undefined;
  return pending.length === 1 ? pending[0] : Promise.all(pending).then(() => undefined);
}
