// Builds the audit record of a finished request from its context (the schema
// and its documentation are in schema.ts). It runs after the response has
// been sent, and only while the audit trail is on. Fields other engineers'
// stages add to the context (the prompt template) are read defensively, so a
// record never depends on a stage being present.
import type { ChatCompletion, EmbeddingsResponse, Usage } from '../api/schemas.js';
import { cacheTokens } from '../budget/pricing.js';
import type { RequestContext } from '../pipeline/context.js';
import type { PromptPromotionRecord, PromptRollbackRecord, ShadowRunRecord } from '../prompts/audit-events.js';
import { recordBodies } from './bodies.js';
import {
  AUDIT_RECORD_VERSION,
  type AuditApprovalDecision,
  type AuditEntry,
  type AuditPurgeRecord,
  type AuditRequestRecord,
  type BodyMode,
} from './schema.js';

export { AUDIT_RECORD_VERSION };
export type { AuditEntry };
/** @deprecated the request record's old name; use AuditRequestRecord. */
export type AuditRecord = AuditRequestRecord;
export type AuditEvent = AuditApprovalDecision | AuditPurgeRecord | PromptPromotionRecord | PromptRollbackRecord | ShadowRunRecord;

const TRACEPARENT = /^[0-9a-f]{2}-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}$/;

function apiOf(ctx: RequestContext): NonNullable<AuditRequestRecord['api']> {
  const shape = ctx.endpoint === 'messages' || ctx.endpoint === 'count_tokens' ? 'anthropic' : 'openai';
  if (!ctx.deployment) return { shape, upstream: null };
  // A Responses request reached the upstream as itself only on a Responses-native deployment; chat is always chat upstream.
  const native = ctx.native
    ? ctx.native.provider === ctx.deployment.provider.type
    : ctx.responses
      ? ctx.responses.sentNative === true
      : shape === 'openai';
  return { shape, upstream: native ? 'native' : 'translated' };
}

function cacheOfUsage(u: Usage): { cache_read_tokens?: number; cache_write_tokens?: number } {
  const { read, write } = cacheTokens(u);
  return read > 0 || write > 0 ? { cache_read_tokens: read, cache_write_tokens: write } : {};
}

export function buildAuditRecord(ctx: RequestContext, clientDisconnected: boolean): AuditRequestRecord {
  const u = ctx.usage;
  const policy = ctx.policy;
  const lane = policy?.lane;
  // No lane decided (refused before the policy ran): keep the least.
  const mode: BodyMode = lane?.audit.bodies ?? 'hash';
  const response = answerOf(ctx);
  const { bodies, called } = recordBodies({
    mode,
    // Other ingresses keep the chat request the gateway governed, and its answer.
    endpoint: ctx.endpoint === 'embeddings' ? 'embeddings' : 'chat',
    lane,
    restore: policy?.restore,
    raw: ctx.rawBody,
    seen: ctx.chat ?? ctx.embeddings,
    response,
    // The text sent is the reply's body only for a JSON reply; a stream was assembled.
    responseText: ctx.reply?.kind === 'json' ? ctx.responseText : undefined,
    blocked: ctx.error?.code === 'policy_blocked',
    parsed: ctx.chat !== undefined || ctx.embeddings !== undefined,
  });
  const c = ctx.cache;
  return {
    v: AUDIT_RECORD_VERSION,
    kind: 'request',
    id: ctx.id,
    time: new Date(ctx.time).toISOString(),
    endpoint: ctx.ingress,
    api: apiOf(ctx),
    key_id: ctx.key?.id ?? null,
    app: ctx.key?.app ?? null,
    team: ctx.key?.team ?? null,
    model: ctx.requestedModel ?? null,
    lane: lane ? { name: lane.name, reasons: policy.reasons, bodies: lane.audit.bodies, retention_days: lane.audit.retention_days } : null,
    policy: policy
      ? {
          findings: policy.findings,
          redactions: policy.redactions,
          stripped_tools: policy.strippedTools,
          blocked_tool_calls: policy.blockedToolCalls,
          approvals: policy.approvals,
        }
      : null,
    prompt: promptOf(ctx),
    route: ctx.route ? { name: ctx.route.name, rule: ctx.route.rule ?? null, model: ctx.route.model } : null,
    deployment: ctx.deployment?.id ?? null,
    provider: ctx.deployment?.providerName ?? null,
    response_model: typeof (response as { model?: unknown } | undefined)?.model === 'string' ? (response as { model: string }).model : null,
    degraded: ctx.degraded === true,
    stream: ctx.stream,
    status: ctx.status ?? 0,
    error_code: ctx.error?.code ?? null,
    attempts: ctx.attempts,
    cache: c ? cacheOf(c) : null,
    usage: u ? { prompt_tokens: u.prompt_tokens, completion_tokens: u.completion_tokens, total_tokens: u.total_tokens, ...cacheOfUsage(u) } : null,
    cost: ctx.cost ? { usd: ctx.cost.usd, nano_usd: ctx.cost.nano, priced: ctx.cost.priced } : null,
    budgets: ctx.budget?.names ?? [],
    tools: { offered: ctx.chat?.tools?.map((t) => t.function.name) ?? [], called },
    bodies,
    timings: {
      queue_ms: ctx.attempts[0]?.startMs ?? null,
      first_byte_ms: ctx.timings.firstByteMs ?? null,
      total_ms: ctx.timings.totalMs ?? null,
    },
    client_disconnected: clientDisconnected,
    trace_id: ctx.trace?.traceId ?? traceIdFromHeader(ctx.headers.traceparent),
    span_id: ctx.trace?.spanId ?? spanIdFromHeader(ctx.headers.traceparent),
    run_id: runIdOf(ctx.headers),
    client: ctx.client,
  };
}

function cacheOf(c: NonNullable<RequestContext['cache']>): NonNullable<AuditRequestRecord['cache']> {
  const out: NonNullable<AuditRequestRecord['cache']> = { status: c.status };
  if (c.reason !== undefined) out.reason = c.reason;
  if (c.scope !== undefined) out.scope = c.scope;
  if (c.key !== undefined) out.key = c.key;
  if (c.age !== undefined) out.age = c.age;
  if (c.items !== undefined) out.items = c.items;
  return out;
}

/** The answer the app got: a JSON body, or the stream put back together. */
function answerOf(ctx: RequestContext): ChatCompletion | EmbeddingsResponse | undefined {
  const reply = ctx.reply;
  // A token count is no model's answer; the request body holds what was counted.
  if (ctx.endpoint === 'count_tokens') return undefined;
  if (!reply || ctx.error) {
    // A stream that failed midway still delivered what it delivered.
    return reply?.kind === 'stream' ? ctx.assembled?.result() : undefined;
  }
  if (reply.kind === 'json') return reply.status < 300 ? (reply.body as ChatCompletion | EmbeddingsResponse) : undefined;
  return ctx.assembled?.result();
}

function promptOf(ctx: RequestContext): AuditRequestRecord['prompt'] {
  const p = (ctx as { prompt?: unknown }).prompt;
  if (!p || typeof p !== 'object') return null;
  const o = p as Record<string, unknown>;
  const template = [o.template, o.name, o.id].find((v): v is string => typeof v === 'string' && v.length > 0);
  if (!template) return null;
  const version = o.version ?? o.pin;
  return { template, version: typeof version === 'string' || typeof version === 'number' ? String(version) : null };
}

function traceIdFromHeader(header: string | string[] | undefined): string | null {
  if (typeof header !== 'string') return null;
  const m = TRACEPARENT.exec(header.trim());
  return m && !/^0+$/.test(m[1]!) ? m[1]! : null;
}

/** Tracing off: the app's span that sent the request, when its traceparent is valid. */
function spanIdFromHeader(header: string | string[] | undefined): string | null {
  if (typeof header !== 'string') return null;
  const m = TRACEPARENT.exec(header.trim());
  return m && !/^0+$/.test(m[1]!) && !/^0+$/.test(m[2]!) ? m[2]! : null;
}

const RUN_ID = /^[\x21-\x7e]{1,128}$/;

/**
 * The agent run a request belongs to, from `x-gateway-run-id`: the link
 * between a run's LLM requests and its MCP tool calls. Printable ASCII of at
 * most 128 characters; anything else is no run id rather than an error, as
 * the header only labels the record.
 */
export function runIdOf(headers: Record<string, string | string[] | undefined>): string | null {
  const v = headers['x-gateway-run-id'];
  return typeof v === 'string' && RUN_ID.test(v) ? v : null;
}
