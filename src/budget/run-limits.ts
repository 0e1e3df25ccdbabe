// Run limits: per key or route, what one request may ask for and do (tools
// offered, output tokens, tool calls in the answer, run time, requests in
// flight). Applied before the budgets are reserved, as they lower max_tokens
// and so the worst case reserved.
import { GatewayError } from '../errors.js';
import type { RequestContext } from '../pipeline/context.js';

/** Checks the request against the run limits that apply to it, and applies their caps. */
export function applyRunLimits(ctx: RequestContext): void {
  const limits = ctx.config.limits.runLimits;
  if (limits.length === 0) return;
  const chat = ctx.chat;
  const route = ctx.route?.name ?? ctx.requestedModel;
  for (const l of limits) {
    if (l.keys && !l.keys.includes(ctx.key!.id)) continue;
    if (l.routes && (!route || !l.routes.includes(route))) continue;
    if (l.max_tools !== undefined && (chat?.tools?.length ?? 0) > l.max_tools) {
      throw new GatewayError('invalid_request', `This request offers ${chat!.tools!.length} tools; at most ${l.max_tools} are allowed.`, { param: 'tools' });
    }
    if (l.max_output_tokens !== undefined && chat) {
      const asked = chat.max_completion_tokens ?? chat.max_tokens;
      if (asked !== undefined && asked !== null && asked > l.max_output_tokens && l.on_max_output_tokens === 'reject') {
        throw new GatewayError('invalid_request', `max_tokens ${asked} is over the limit of ${l.max_output_tokens}.`, { param: 'max_tokens' });
      }
      if (asked === undefined || asked === null || asked > l.max_output_tokens) {
        if (chat.max_completion_tokens != null) chat.max_completion_tokens = l.max_output_tokens;
        else chat.max_tokens = l.max_output_tokens;
      }
    }
    if (l.max_tool_calls !== undefined) ctx.maxToolCalls = Math.min(ctx.maxToolCalls ?? Infinity, l.max_tool_calls);
    if (l.max_runtime_ms !== undefined) {
      const ms = l.max_runtime_ms;
      const timer = setTimeout(() => ctx.abort(new GatewayError('request_timeout', `The request ran longer than its limit of ${ms} ms.`, { status: 504 })), ms);
      timer.unref();
      ctx.cleanups.push(() => clearTimeout(timer));
    }
    if (l.max_concurrent !== undefined) {
      const conc = ctx.services.budget.concurrency;
      const id = ctx.key!.id;
      const current = conc.get(id) ?? 0;
      if (current >= l.max_concurrent) {
        throw new GatewayError('rate_limited', `Your key already has ${current} requests in flight; at most ${l.max_concurrent} are allowed. Retry when one finishes.`, { retryAfter: 1 });
      }
      conc.set(id, current + 1);
      ctx.cleanups.push(() => conc.set(id, (conc.get(id) ?? 1) - 1));
    }
  }
}

/** max_tool_calls on a JSON answer: calls past the cap are dropped, and an event says how many. */
/** Returns whether it cut any calls (the answer then changed). */
export function capToolCalls(ctx: RequestContext, body: { choices?: Array<{ message?: { tool_calls?: unknown[] } }> }): boolean {
  const max = ctx.maxToolCalls!;
  let cut = false;
  for (const choice of body.choices ?? []) {
    const calls = choice.message?.tool_calls;
    if (calls && calls.length > max) {
      ctx.events.push({ stage: 'run_limits', dropped_tool_calls: calls.length - max });
      choice.message!.tool_calls = calls.slice(0, max);
      cut = true;
    }
  }
  return cut;
}
