// Route by value: a route is a name apps ask for (`auto`) whose model is
// chosen per request by ordered rules. First match wins; the last rule is the
// default. Rules compile once per config load into plain predicates; the
// prompt is counted with tiktoken only when a rule that needs it is reached.
import { GatewayError } from '../errors.js';
import type { RequestContext } from '../pipeline/context.js';
import { promptTokenBound, promptTokens } from '../providers/tokens.js';
import type { RequestFacts } from './compile.js';

export function requestFacts(ctx: RequestContext): RequestFacts {
  const chat = ctx.chat;
  const header = (name: string) => {
    const v = ctx.headers[name];
    return typeof v === 'string' ? v : undefined;
  };
  const tags = new Set<string>();
  for (const source of [header('x-gateway-tags'), chat?.metadata?.tags]) {
    if (source) for (const t of source.split(',')) if (t.trim()) tags.add(t.trim());
  }
  let hasImages = false;
  for (const m of chat?.messages ?? []) {
    if (Array.isArray(m.content) && m.content.some((p) => p.type === 'image_url' || p.type === 'input_image')) {
      hasImages = true;
      break;
    }
  }
  return {
    app: ctx.key?.app,
    team: ctx.key?.team,
    key: ctx.key?.id,
    lane: ctx.lane,
    priority: header('x-gateway-priority') ?? chat?.metadata?.priority,
    tags,
    hasTools: (chat?.tools?.length ?? 0) > 0,
    hasImages,
    responseFormat: chat?.response_format?.type ?? 'text',
    stream: ctx.stream,
  };
}

/** Pipeline stage: picks the model for a route name, or passes a model name through. */
export async function routeRequest(ctx: RequestContext): Promise<void> {
  const name = ctx.requestedModel!;
  const route = ctx.config.routes.get(name);
  if (!route) {
    ctx.route = { name, rule: undefined, model: name };
    return;
  }
  if (ctx.key?.models && !ctx.key.models.has(name)) {
    throw new GatewayError('model_not_found', `The model "${name}" does not exist or your key cannot use it. GET /v1/models lists the models available to your key.`, {
      param: 'model',
    });
  }
  if (!ctx.chat) throw new GatewayError('invalid_request', `"${name}" is a chat route; call it through /v1/chat/completions.`, { param: 'model' });
  const facts = requestFacts(ctx);
  let bound: number | undefined;
  // A count that stopped at its limit: the prompt has at least this many tokens.
  let atLeast = 0;
  for (const rule of route.rules) {
    if (!rule.matches(facts)) continue;
    const range = rule.tokenRange;
    if (range) {
      // The byte bound settles most rules without tokenizing (about 1 µs per
      // token): a prompt of fewer bytes than `min` has fewer tokens, and one
      // of at most `max` bytes has at most `max` tokens.
      bound ??= ctx.promptTokens ?? (ctx.chat ? promptTokenBound(ctx.chat) : 0);
      if (bound < range.min) continue;
      if (range.min > 0 || bound > range.max) {
        // Counting stops once it settles the rule: at `min` when there is no
        // `max`, just past `max` otherwise (a 100 KB prompt against a rule of
        // 4,000 tokens is counted a few KB in, not to its end).
        const enough = range.max === Infinity ? range.min : range.max + 1;
        const tokens = ctx.promptTokens ?? (atLeast >= enough ? atLeast : (atLeast = await promptTokens(ctx, enough)));
        if (tokens < range.min || tokens > range.max) continue;
      }
    }
    ctx.route = { name, rule: rule.name, model: rule.model };
    ctx.responseHeaders['x-gateway-route'] = `${name}; rule=${rule.name}; model=${rule.model}`;
    ctx.events.push({ stage: 'route', route: name, rule: rule.name, model: rule.model });
    return;
  }
  // Unreachable with a validated config: the last rule is the default.
  throw new Error(`route ${name} has no default rule`);
}
