// Explains what the policies would do with a request, without calling any
// provider: the lane and why, what fired, what would be redacted, which
// tools go, and which deployments remain; or with one MCP tool call (what
// the gateway would refuse, hold or run). Reviewers use it to test policies
// before rollout (POST /admin/policy/explain, `lanegate explain`).
import type { CompiledConfig, KeyInfo } from '../config/compile.js';
import { GatewayError, toGatewayError } from '../errors.js';
import { createContext, type Endpoint, type Services } from '../pipeline/context.js';
import { explainStages } from '../pipeline/index.js';
import { runStages } from '../pipeline/run.js';
import { createMetrics } from '../telemetry/metrics.js';
import { toolRefusal, type CompiledLane } from './compile.js';
import { toolKey, type ToolKey } from './tool-name.js';
import { judgeMcpToolCall } from './tool-call.js';
import { toolRunLimits } from '../mcp/tool-runs.js';

export interface ExplainInput {
  keyId: string;
  endpoint: Endpoint;
  body: unknown;
  headers: Record<string, string>;
}

export async function explainRequest(config: CompiledConfig, services: Services, input: ExplainInput): Promise<Record<string, unknown>> {
  const key = findKey(config, input.keyId);
  const headers = Object.fromEntries(Object.entries(input.headers).map(([k, v]) => [k.toLowerCase(), v]));
  const ctx = createContext({
    id: 'explain',
    endpoint: input.endpoint,
    config,
    // Explaining is not traffic: its policy counts go to a throwaway registry.
    services: { ...services, metrics: createMetrics({ defaultMetrics: false }) },
    headers,
    readBody: async () => structuredClone(input.body),
  });
  ctx.key = key;
  // The tools as the app (or its template) offered them, before the lane strips any.
  let asked: string[] = [];
  let refusal: GatewayError | undefined;
  try {
    // A prompt template is rendered first, as on the request path, so the lane sees the real prompt.
    await runStages(explainStages.parse[input.endpoint], ctx);
    asked = ctx.chat?.tools?.map((t) => t.function.name) ?? [];
    await runStages(explainStages.policy, ctx);
  } catch (err) {
    refusal = toGatewayError(err);
  }
  const lane = ctx.policy?.lane;
  const allDeployments = ctx.model ? [ctx.model.name, ...ctx.model.fallbacks].flatMap((m) => config.models.get(m)?.deployments.map((d) => d.id) ?? []) : [];
  const remaining = ctx.candidates.map((d) => d.id);
  return {
    key: { id: key.id, app: key.app, team: key.team, default_lane: key.lane, lanes: [...key.lanes] },
    decision: refusal ? 'refused' : 'allowed',
    ...(refusal ? { error: refusal.toJSON().error, status: refusal.status } : {}),
    lane: lane ? { name: lane.name, rank: lane.rank, reasons: ctx.policy!.reasons } : null,
    detectors: ctx.policy?.findings ?? [],
    redactions: ctx.policy?.redactions ?? 0,
    // The request as it would leave the gateway, with placeholders, never the values.
    redacted_request: ctx.policy && ctx.policy.redactions > 0 ? (ctx.chat?.messages ?? ctx.embeddings?.input) : undefined,
    stripped_tools: ctx.policy?.strippedTools ?? [],
    offered_tools: lane ? asked.map((name) => offeredTool(lane, name)) : [],
    tool_rules: lane
      ? {
          require_approval: declared(lane, lane.tools.requireApproval),
          denied: declared(lane, lane.tools.deny),
          allowed: allowedTools(lane),
          recipients: lane.tools.recipients ?? null,
        }
      : null,
    route: ctx.route ?? null,
    deployments: { remaining, excluded_by_lane: allDeployments.filter((d) => !remaining.includes(d)) },
    cache_scope: lane?.cache ?? null,
    audit_bodies: lane?.audit.bodies ?? null,
  };
}

/** How the lane reads one offered tool: the canonical name it is compared by, the catalogue entry it matches and the verdict. */
function offeredTool(lane: CompiledLane, name: string): Record<string, unknown> {
  const key = toolKey(name);
  const refused = toolRefusal(lane, key);
  const verdict = refused ?? (lane.tools.requireApproval.has(key) ? 'require_approval' : 'allowed');
  return { name, canonical: key, catalogued_as: lane.tools.catalogue ? (lane.tools.catalogue.get(key) ?? null) : null, verdict };
}

/** "*" is every catalogued tool the lane does not deny; only without policies is it any name. */
function allowedTools(lane: CompiledLane): string[] {
  const t = lane.tools;
  if (t.allow) return declared(lane, t.allow);
  if (!t.catalogue) return ['*'];
  return [...t.catalogue].filter(([key]) => !t.deny.has(key)).map(([, name]) => name);
}

/** Canonical names back in the spelling the catalogue declares. */
function declared(lane: CompiledLane, keys: ReadonlySet<ToolKey>): string[] {
  return [...keys].map((k) => lane.tools.catalogue?.get(k) ?? k);
}

function findKey(config: CompiledConfig, id: string): KeyInfo {
  if (config.auth.mode === 'none' && id === 'anonymous') return config.auth.anonymous;
  for (const { key } of config.keysByHash.values()) if (key.id === id) return key;
  throw new GatewayError('invalid_request', `No key with id "${id}" in the config.`, { param: 'key_id' });
}

export interface ExplainToolCallInput {
  keyId: string;
  /** The namespaced name the agent would call (`server__tool`). */
  tool: string;
  args: Record<string, unknown>;
  /** A stricter lane the session asks for; the key's lane otherwise. */
  lane?: string;
}

/**
 * What the policy would do with one MCP tool call, without running it or
 * counting it: the lane and why, the canonical name and catalogue entry, the
 * verdict and the rule behind it, detector findings, the arguments as they
 * would reach the server (placeholders, never the values), and the run
 * budgets that would apply.
 */
export function explainToolCall(config: CompiledConfig, input: ExplainToolCallInput): Record<string, unknown> {
  const key = findKey(config, input.keyId);
  const laneName = input.lane ?? key.lane;
  if (!config.policies.lanes.has(laneName)) throw new GatewayError('invalid_request', `No lane "${laneName}" (lanes: ${config.policies.order.join(', ')}).`, { param: 'lane' });
  if (!key.lanes.has(laneName)) throw new GatewayError('lane_violation', `Key "${key.id}" may not use lane "${laneName}" (it may use: ${[...key.lanes].join(', ')}).`, { param: 'lane' });
  const j = judgeMcpToolCall(config, laneName, { name: input.tool, args: input.args });
  const lane = j.lane;
  const v = j.verdict;
  const limits = toolRunLimits(config.raw.tool_runs, { keyId: key.id, lane: lane.name, name: input.tool });
  return {
    key: { id: key.id, app: key.app, team: key.team, default_lane: key.lane, lanes: [...key.lanes] },
    tool: { name: input.tool, canonical: j.canonical, catalogued_as: lane.tools.catalogue ? (lane.tools.catalogue.get(j.canonical) ?? null) : null },
    decision: v.outcome === 'refuse' ? 'refused' : v.outcome === 'hold' ? 'held' : 'executed',
    rule: v.outcome === 'refuse' ? v.rule : v.outcome === 'hold' ? 'require_approval' : null,
    ...(v.outcome === 'refuse' ? { message: v.message } : {}),
    lane: { name: lane.name, rank: lane.rank, reasons: j.reasons },
    detectors: j.findings,
    redactions: j.redactions,
    // As the server would get them; a blocked call's are not shown at all.
    arguments: j.blocked ? null : j.args,
    tool_rules: {
      require_approval: declared(lane, lane.tools.requireApproval),
      denied: declared(lane, lane.tools.deny),
      allowed: allowedTools(lane),
      recipients: lane.tools.recipients ?? null,
      paths: lane.tools.paths ?? null,
    },
    run_budget: limits
      ? { max_tool_calls: limits.maxToolCalls ?? null, max_runtime_ms: limits.maxRuntimeMs ?? null, max_concurrent: limits.maxConcurrent ?? null, per_minute: limits.perMinute ?? null }
      : null,
    audit_bodies: lane.audit.bodies,
  };
}
