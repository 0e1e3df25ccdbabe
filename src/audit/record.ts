// One audit record per request. Version 1 is the minimal record; bodies come
// with the lanes that decide how much of them may be kept.
import type { RequestContext } from '../pipeline/context.js';

export const AUDIT_RECORD_VERSION = 1;

export interface AuditRecord {
  v: number;
  kind: 'request';
  id: string;
  time: string;
  endpoint: string;
  key_id: string | null;
  app: string | null;
  team: string | null;
  model: string | null;
  lane: { name: string; reasons: string[] } | null;
  policy: {
    findings: Array<{ detector: string; action: string; count: number }>;
    redactions: number;
    stripped_tools: string[];
    blocked_tool_calls: Array<{ tool: string; reason: string }>;
    approvals: Array<{ id: string; tool: string }>;
  } | null;
  route: { name: string; rule: string | null; model: string } | null;
  degraded: boolean;
  deployment: string | null;
  provider: string | null;
  stream: boolean;
  status: number;
  error_code: string | null;
  usage: { prompt_tokens: number; completion_tokens: number; total_tokens: number } | null;
  /** What the request cost, from the provider's usage; nano_usd is exact (1e-9 USD). */
  cost: { usd: number; nano_usd: number; priced: boolean } | null;
  /** The budgets the request was counted against. */
  budgets: string[];
  attempts: RequestContext['attempts'];
  timings: { first_byte_ms: number | null; total_ms: number | null };
  client_disconnected: boolean;
}

export function buildAuditRecord(ctx: RequestContext, clientDisconnected: boolean): AuditRecord {
  const u = ctx.usage;
  return {
    v: AUDIT_RECORD_VERSION,
    kind: 'request',
    id: ctx.id,
    time: new Date(ctx.time).toISOString(),
    endpoint: ctx.endpoint,
    key_id: ctx.key?.id ?? null,
    app: ctx.key?.app ?? null,
    team: ctx.key?.team ?? null,
    model: ctx.requestedModel ?? null,
    lane: ctx.policy ? { name: ctx.policy.lane.name, reasons: ctx.policy.reasons } : null,
    policy: ctx.policy
      ? {
          findings: ctx.policy.findings,
          redactions: ctx.policy.redactions,
          stripped_tools: ctx.policy.strippedTools,
          blocked_tool_calls: ctx.policy.blockedToolCalls,
          approvals: ctx.policy.approvals,
        }
      : null,
    route: ctx.route ? { name: ctx.route.name, rule: ctx.route.rule ?? null, model: ctx.route.model } : null,
    degraded: ctx.degraded === true,
    deployment: ctx.deployment?.id ?? null,
    provider: ctx.deployment?.providerName ?? null,
    stream: ctx.stream,
    status: ctx.status ?? 0,
    error_code: ctx.error?.code ?? null,
    usage: u ? { prompt_tokens: u.prompt_tokens, completion_tokens: u.completion_tokens, total_tokens: u.total_tokens } : null,
    cost: ctx.cost ? { usd: ctx.cost.usd, nano_usd: ctx.cost.nano, priced: ctx.cost.priced } : null,
    budgets: ctx.budget?.names ?? [],
    attempts: ctx.attempts,
    timings: { first_byte_ms: ctx.timings.firstByteMs ?? null, total_ms: ctx.timings.totalMs ?? null },
    client_disconnected: clientDisconnected,
  };
}

/** Something that happened outside a request, such as a human deciding an approval. */
export interface AuditEvent {
  v: number;
  kind: 'approval_decision';
  id: string;
  time: string;
  [detail: string]: unknown;
}

export type AuditEntry = AuditRecord | AuditEvent;
