// The audit record, version 2: one per request, plus event records (an
// approval decided, a purge). This schema is the documentation of the format
// (README "Audit trail") and what readers validate against; the writer does
// not re-validate on the hot path, the builder is typed by it instead.
//
// Field names are snake_case, except inside `attempts`, which keeps the
// routing layer's names (deployment, errorClass, latencyMs...) as version 1 did.
import { z } from 'zod';
import { TOOL_BLOCK_RULES } from '../policy/tools.js';
import { PROMPTS_CHAIN, promptPromotionRecordSchema, promptRollbackRecordSchema, shadowRunRecordSchema } from '../prompts/audit-events.js';
import { fileRecordSchema } from '../files/audit.js';

export const AUDIT_RECORD_VERSION = 2;

/** What a record keeps of bodies: the lane's `audit.bodies`, or `hash` when no lane was decided. */
export const BODY_MODES = ['full', 'redacted', 'hash'] as const;
export type BodyMode = (typeof BODY_MODES)[number];

/** The chain of records that belong to no lane (refused before a lane was chosen). */
export const GATEWAY_CHAIN = '_gateway';
/**
 * Who `lanegate eval` and `promote`'s gate run as: key, app and team `_eval`,
 * so their spend shows apart in costs, /admin/usage and the spend metric.
 * Their request records have their own chain, `_eval`: the CLI writes them
 * beside a running gateway, which never appends to it.
 */
export const EVAL_IDENTITY = '_eval';
/** The chain of purge records; never swept. */
export const PURGE_CHAIN = '_purges';

const sha256 = z.string().regex(/^[0-9a-f]{64}$/);

export const attemptSchema = z.object({
  deployment: z.string(),
  provider: z.string(),
  /** Upstream HTTP status, when one came back (200 on success). */
  status: z.number().int().optional(),
  errorClass: z.enum(['connect', 'timeout', 'status', 'protocol', 'aborted', 'breaker_open', 'cooling_down', 'shed']).optional(),
  /** The gateway error code of a failed attempt; absent on success. */
  code: z.string().optional(),
  /** When the attempt started, in ms after the request arrived. */
  startMs: z.number().optional(),
  latencyMs: z.number(),
  /** 0 for the first try at a deployment, then 1, 2... */
  retry: z.number().int(),
  /** Tried because the candidates before it failed. */
  fallback: z.boolean(),
  /** Answered by the safe-mode model. */
  degraded: z.boolean().optional(),
});

export const toolCallSchema = z.object({
  id: z.string(),
  name: z.string(),
  /** The arguments, as the lane allows: verbatim (full), redacted, or null (hash). */
  arguments: z.string().nullable(),
  arguments_sha256: sha256,
});

export const bodiesSchema = z.object({
  /** How much the lane lets the record keep. */
  mode: z.enum(BODY_MODES),
  /**
   * full: the request as the app sent it; redacted: as the provider saw it
   * (placeholders such as [EMAIL_1]); hash: null.
   */
  request: z.unknown().nullable(),
  /**
   * The answer: a chat.completion (streams assembled into one), or for
   * embeddings a summary without vectors. full: as the app got it; redacted:
   * with the lane's detectors applied again and restored values masked;
   * hash: null.
   */
  response: z.unknown().nullable(),
  /** sha256 of the request body bytes as received. */
  request_sha256: sha256.nullable(),
  /** sha256 of the response JSON as sent (streams: of the assembled message's JSON). */
  response_sha256: sha256.nullable(),
});

const chainFields = {
  /** File sink: the `hash` of the record before this one in its chain (64 zeros for the first). Stream sink: 64 zeros (entries are sealed one by one). */
  prev: sha256.optional(),
  /** sha256 of this line up to its hash field (which includes prev), closed with "}"; checked whenever a record is read back. */
  hash: sha256.optional(),
};

export const requestRecordSchema = z.object({
  v: z.literal(AUDIT_RECORD_VERSION),
  kind: z.literal('request'),
  /** The request id, as in x-request-id. */
  id: z.string(),
  /** When the request arrived (ISO 8601, UTC). */
  time: z.string(),
  /** The API the client called (ctx.ingress): chat, embeddings, responses (OpenAI's Responses API), messages or count_tokens (Anthropic's). */
  endpoint: z.enum(['chat', 'embeddings', 'responses', 'messages', 'count_tokens']),
  /** The API shape the app spoke (openai, anthropic) and whether the upstream got it in that shape (native) or translated; absent in older records. */
  api: z.object({ shape: z.enum(['openai', 'anthropic']), upstream: z.enum(['native', 'translated']).nullable() }).optional(),
  /** The client's user-agent family (api/client-family.ts); written after run_id; absent in records written before it was kept. */
  client: z.string().optional(),
  key_id: z.string().nullable(),
  app: z.string().nullable(),
  team: z.string().nullable(),
  /** The model or route the app asked for. */
  model: z.string().nullable(),
  lane: z
    .object({
      name: z.string(),
      /** Why the request is in this lane, in order. */
      reasons: z.array(z.string()),
      bodies: z.enum(BODY_MODES),
      retention_days: z.number().int(),
    })
    .nullable(),
  policy: z
    .object({
      /** Detectors that fired, with the action taken and how many matches (never the values). */
      findings: z.array(z.object({ detector: z.string(), action: z.string(), count: z.number().int() })),
      redactions: z.number().int(),
      /** Tools removed from the request because the lane denies them. */
      stripped_tools: z.array(z.string()),
      /** Tool calls the model made that the guard removed: the name as the model wrote it, which rule, and why. */
      blocked_tool_calls: z.array(
        z.object({
          tool: z.string(),
          /** Absent in records written before it was added. */
          rule: z.enum(TOOL_BLOCK_RULES).optional(),
          reason: z.string(),
        }),
      ),
      /** Tool calls held for a human's approval. */
      approvals: z.array(z.object({ id: z.string(), tool: z.string() })),
    })
    .nullable(),
  /** The prompt template and version rendered into the request, if any. */
  prompt: z.object({ template: z.string(), version: z.string().nullable() }).nullable(),
  /** Which route and rule chose the model; for plain model names, route = model and rule = null. */
  route: z.object({ name: z.string(), rule: z.string().nullable(), model: z.string() }).nullable(),
  /** The deployment and provider that answered. */
  deployment: z.string().nullable(),
  provider: z.string().nullable(),
  /** The model name the provider reported in its answer. */
  response_model: z.string().nullable(),
  degraded: z.boolean(),
  stream: z.boolean(),
  /** HTTP status sent (200 for a stream that started, even if it failed later: see error_code). */
  status: z.number().int(),
  error_code: z.string().nullable(),
  /** Every upstream attempt, in order: retries, fallbacks and breaker refusals included. */
  attempts: z.array(attemptSchema),
  /** The response cache's decision: status hit, miss or bypass, and why. */
  cache: z
    .object({
      status: z.string(),
      reason: z.string().optional(),
      scope: z.string().optional(),
      key: z.string().optional(),
      age: z.number().optional(),
      items: z.object({ hits: z.number(), total: z.number() }).optional(),
    })
    .nullable(),
  usage: z
    .object({
      prompt_tokens: z.number(),
      completion_tokens: z.number(),
      total_tokens: z.number(),
      /** Prompt tokens read from and written to the provider's prompt cache (inside prompt_tokens), priced at their own rates. */
      cache_read_tokens: z.number().optional(),
      cache_write_tokens: z.number().optional(),
    })
    .nullable(),
  /** What the request cost, from the provider's usage; nano_usd is exact (1e-9 USD). */
  cost: z.object({ usd: z.number(), nano_usd: z.number(), priced: z.boolean() }).nullable(),
  /** The budgets the request was counted against. */
  budgets: z.array(z.string()),
  tools: z.object({
    /** Tool names the request offered the model (after the lane stripped denied ones). */
    offered: z.array(z.string()),
    /** Tool calls in the answer the app got (blocked and held ones are under policy). */
    called: z.array(toolCallSchema),
  }),
  bodies: bodiesSchema,
  timings: z.object({
    /** Time in the gateway before the first upstream call (auth, policy, routing, cache, budget). */
    queue_ms: z.number().nullable(),
    /** Time to the first byte sent to the client (streams: the first chunk). */
    first_byte_ms: z.number().nullable(),
    total_ms: z.number().nullable(),
  }),
  client_disconnected: z.boolean(),
  /** The W3C trace id (tracing on, or a traceparent the app sent). */
  trace_id: z.string().nullable(),
  /** The request's span in that trace: the gateway's server span, or with tracing off the app's span that sent it. */
  span_id: z.string().nullable(),
  /** The agent run the request belongs to (x-gateway-run-id); its tool_call records carry the same. Absent in older records. */
  run_id: z.string().nullable().optional(),
  ...chainFields,
});

/** What the gateway did with one MCP tool call. */
export const TOOL_CALL_DECISIONS = ['executed', 'refused', 'held', 'failed'] as const;

/**
 * One MCP tool call through the gateway (/mcp), in its lane's chain beside
 * the LLM requests of the same run (run_id). An approved call's execution
 * is a record of its own, with the approval's id.
 */
export const toolCallRecordSchema = z.object({
  v: z.literal(AUDIT_RECORD_VERSION),
  kind: z.literal('tool_call'),
  /** This record's own id. */
  id: z.string(),
  time: z.string(),
  /** The MCP request that carried the call (as in x-request-id). */
  request_id: z.string(),
  run_id: z.string().nullable(),
  key_id: z.string(),
  app: z.string(),
  team: z.string(),
  lane: z.object({ name: z.string(), reasons: z.array(z.string()), bodies: z.enum(BODY_MODES), retention_days: z.number().int() }),
  server: z.string(),
  /** The tool's name on its server. */
  tool: z.string(),
  /** The namespaced name as the agent called it, and its canonical form. */
  name: z.string(),
  canonical: z.string(),
  decision: z.enum(TOOL_CALL_DECISIONS),
  /** What refused or held it: denied, uncatalogued, recipients, paths, detector:<name>, tool_runs.<limit>, require_approval. */
  rule: z.string().nullable(),
  /** The approval that holds the call, or whose approval let it run. */
  approval_id: z.string().nullable(),
  /** Detectors that fired on the arguments and the result (never the values). */
  findings: z.array(z.object({ detector: z.string(), action: z.string(), count: z.number().int(), on: z.enum(['arguments', 'result']) })),
  /** The arguments as the lane's audit.bodies allows (JSON text): verbatim, redacted, or null (hash). */
  arguments: z.string().nullable(),
  arguments_sha256: sha256,
  /** The result the agent got (CallToolResult JSON text), as the lane allows; null when none. */
  result: z.string().nullable(),
  result_sha256: sha256.nullable(),
  /** The result said isError, or the call failed. */
  is_error: z.boolean(),
  error: z.string().nullable(),
  latency_ms: z.number().nullable(),
  ...chainFields,
});

export const approvalDecisionRecordSchema = z.looseObject({
  v: z.number().int(),
  kind: z.literal('approval_decision'),
  /** The approval id. */
  id: z.string(),
  time: z.string(),
  decision: z.enum(['approved', 'rejected']),
  by: z.string().nullable(),
  reason: z.string().nullable(),
  request_id: z.string(),
  lane: z.string().nullable(),
  ...chainFields,
});

export const purgeRecordSchema = z.object({
  v: z.literal(AUDIT_RECORD_VERSION),
  kind: z.literal('purge'),
  id: z.string(),
  time: z.string(),
  /** retention: the sweeper applying each lane's retention_days; manual: `lanegate audit purge`. */
  reason: z.enum(['retention', 'manual']),
  /** Records written before this instant were removed (manual purges). */
  before: z.string().nullable(),
  sink: z.enum(['file', 'redis']),
  chains: z.array(
    z.object({
      /** The lane (or _gateway). */
      chain: z.string(),
      /**
       * Files removed (file sink), oldest first, each with the hash of its
       * last record: the first record left in the chain has one of them as
       * `prev`, so `audit verify` can tell a purge from a deletion.
       */
      files: z.array(z.object({ file: z.string(), records: z.number().int(), last_hash: sha256.nullable() })),
      records: z.number().int(),
      /** Removed up to this instant (ISO 8601). */
      through: z.string(),
    }),
  ),
  ...chainFields,
});

/**
 * Written at the start after a run that did not stop cleanly: the requests
 * that run answered whose records it lost (see read/crash-check.ts). The trail
 * itself then says what is missing, and `audit verify` reports it.
 */
export const lossRecordSchema = z.object({
  v: z.literal(AUDIT_RECORD_VERSION),
  kind: z.literal('loss'),
  id: z.string(),
  time: z.string(),
  reason: z.literal('unclean_stop'),
  /** They were answered after this instant (the oldest intent segment left behind was opened then). */
  since: z.string(),
  requests: z.array(z.object({ id: z.string(), lane: z.string().nullable() })),
  ...chainFields,
});

export const auditEntrySchema = z.discriminatedUnion('kind', [
  requestRecordSchema,
  approvalDecisionRecordSchema,
  purgeRecordSchema,
  lossRecordSchema,
  toolCallRecordSchema,
  // The prompt lifecycle: promotions, rollbacks and shadow runs (src/prompts/audit-events.ts).
  promptPromotionRecordSchema,
  promptRollbackRecordSchema,
  shadowRunRecordSchema,
  // Files uploaded and deleted through the Files API (src/files/audit.ts).
  fileRecordSchema,
]);

export type AuditRequestRecord = z.infer<typeof requestRecordSchema>;
export type AuditApprovalDecision = z.infer<typeof approvalDecisionRecordSchema>;
export type AuditPurgeRecord = z.infer<typeof purgeRecordSchema>;
export type AuditLossRecord = z.infer<typeof lossRecordSchema>;
export type AuditToolCallRecord = z.infer<typeof toolCallRecordSchema>;
export type AuditEntry = z.infer<typeof auditEntrySchema>;
export type AuditBodies = z.infer<typeof bodiesSchema>;
export type AuditToolCall = z.infer<typeof toolCallSchema>;

/** The chain (file set, stream) a record belongs to: its lane, or one of the gateway's own. */
export function chainOf(entry: AuditEntry): string {
  if (entry.kind === 'request') return entry.key_id === EVAL_IDENTITY ? EVAL_IDENTITY : (entry.lane?.name ?? GATEWAY_CHAIN);
  if (entry.kind === 'tool_call' || entry.kind === 'file') return entry.lane.name;
  if (entry.kind === 'purge') return PURGE_CHAIN;
  if (entry.kind === 'loss') return GATEWAY_CHAIN;
  // Written by the CLI, beside a running gateway: a chain no gateway appends to.
  if (entry.kind === 'prompt_promotion' || entry.kind === 'prompt_rollback') return PROMPTS_CHAIN;
  return entry.lane ?? GATEWAY_CHAIN;
}
