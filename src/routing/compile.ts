// Route rules compiled once per config load into plain predicates over a
// request's facts. Kept apart from the routing stage (rules.ts) so that
// compiling a config never depends on the request context.
import type { RouteConfig, RouteRuleConfig, SloConfig } from '../config/schema.js';

export interface CompiledRule {
  name: string;
  model: string;
  /** Checks everything but the prompt size. */
  matches(facts: RequestFacts): boolean;
  tokenRange: { min: number; max: number } | undefined;
}

export interface CompiledRoute {
  name: string;
  rules: CompiledRule[];
  slo: SloConfig | undefined;
}

export interface RequestFacts {
  app: string | undefined;
  team: string | undefined;
  key: string | undefined;
  lane: string | undefined;
  priority: string | undefined;
  tags: ReadonlySet<string>;
  hasTools: boolean;
  hasImages: boolean;
  responseFormat: string;
  stream: boolean;
}

export function compileRoutes(routes: Record<string, RouteConfig>): Map<string, CompiledRoute> {
  const out = new Map<string, CompiledRoute>();
  for (const [name, route] of Object.entries(routes)) out.set(name, { name, rules: route.rules.map(compileRule), slo: route.slo });
  return out;
}

function compileRule(rule: RouteRuleConfig): CompiledRule {
  const m = rule.match ?? {};
  const checks: Array<(f: RequestFacts) => boolean> = [];
  const oneOf = (values: string[] | undefined, get: (f: RequestFacts) => string | undefined) => {
    if (!values) return;
    const set = new Set(values);
    checks.push((f) => {
      const v = get(f);
      return v !== undefined && set.has(v);
    });
  };
  oneOf(m.apps, (f) => f.app);
  oneOf(m.teams, (f) => f.team);
  oneOf(m.keys, (f) => f.key);
  oneOf(m.lanes, (f) => f.lane);
  oneOf(m.priority, (f) => f.priority);
  oneOf(m.response_format, (f) => f.responseFormat);
  if (m.tags) {
    const tags = m.tags;
    checks.push((f) => tags.some((t) => f.tags.has(t)));
  }
  if (m.has_tools !== undefined) checks.push((f) => f.hasTools === m.has_tools);
  if (m.has_images !== undefined) checks.push((f) => f.hasImages === m.has_images);
  if (m.stream !== undefined) checks.push((f) => f.stream === m.stream);
  const needsTokens = m.min_prompt_tokens !== undefined || m.max_prompt_tokens !== undefined;
  return {
    name: rule.name,
    model: rule.model,
    matches: (f) => checks.every((check) => check(f)),
    tokenRange: needsTokens ? { min: m.min_prompt_tokens ?? 0, max: m.max_prompt_tokens ?? Infinity } : undefined,
  };
}
