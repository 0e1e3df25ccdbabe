// Audit records of the prompt lifecycle (part of the audit schema,
// src/audit/schema.ts):
//
//   prompt_promotion  `lanegate promote` moved a pin, with the eval report's sha256
//   prompt_rollback   `lanegate rollback` moved it back
//   shadow_run        a sampled live request and its shadow run, side by side
//
// Promotions and rollbacks are written by the CLI, a separate process from a
// running gateway, so they have a chain of their own (`_prompts`) that no
// gateway appends to. Shadow runs go to their request's lane chain and keep
// outputs only where the lane keeps full bodies.
import { z } from 'zod';

export const PROMPTS_CHAIN = '_prompts';

const sha256 = z.string().regex(/^[0-9a-f]{64}$/);
const chainFields = { prev: sha256.optional(), hash: sha256.optional() };

const gate = z.object({
  /** The eval set the gate ran, as name@version. */
  set: z.string(),
  threshold: z.number(),
  pass_rate: z.number(),
  passed: z.boolean(),
  /** sha256 of the JSON report file as written. */
  report_sha256: sha256,
  report_file: z.string().nullable(),
});

export const promptPromotionRecordSchema = z.looseObject({
  v: z.number().int(),
  kind: z.literal('prompt_promotion'),
  id: z.string(),
  time: z.string(),
  prompt: z.string(),
  /** The app whose own pin moved; null for the prompt's pin. */
  pin_app: z.string().nullable(),
  from: z.string().nullable(),
  to: z.string(),
  /** False when the gate failed and the pin was left alone. */
  applied: z.boolean(),
  pins_file: z.string(),
  /** Who ran it (--by, else the OS user). */
  by: z.string().nullable(),
  note: z.string().nullable(),
  gate,
  /** Always null: promotions belong to no lane (their chain is _prompts). */
  lane: z.null(),
  ...chainFields,
});

export const promptRollbackRecordSchema = z.looseObject({
  v: z.number().int(),
  kind: z.literal('prompt_rollback'),
  id: z.string(),
  time: z.string(),
  prompt: z.string(),
  pin_app: z.string().nullable(),
  from: z.string(),
  to: z.string(),
  pins_file: z.string(),
  by: z.string().nullable(),
  note: z.string().nullable(),
  /** sha256 of the newest passing eval report of the restored version in the reports folder, if any. */
  report_sha256: sha256.nullable(),
  lane: z.null(),
  ...chainFields,
});

const runSide = z.object({
  version: z.string(),
  model: z.string().nullable(),
  deployment: z.string().nullable(),
  status: z.number().int(),
  error_code: z.string().nullable(),
  latency_ms: z.number().nullable(),
  usage: z.object({ prompt_tokens: z.number(), completion_tokens: z.number(), total_tokens: z.number() }).nullable(),
  cost_usd: z.number().nullable(),
  /** The answer (first choice), only when the lane keeps full bodies. */
  output: z.object({ content: z.string().nullable(), tool_calls: z.array(z.object({ name: z.string(), arguments: z.string() })) }).nullable(),
  output_sha256: sha256.nullable(),
  checks: z.array(z.object({ type: z.string(), pass: z.boolean(), detail: z.string().optional() })),
});

export const shadowRunRecordSchema = z.looseObject({
  v: z.number().int(),
  kind: z.literal('shadow_run'),
  /** `<request id>/shadow`. */
  id: z.string(),
  time: z.string(),
  /** The live request's id (its own record has the same id). */
  request_id: z.string(),
  key_id: z.string().nullable(),
  app: z.string().nullable(),
  team: z.string().nullable(),
  lane: z.string().nullable(),
  /** `prompt:<name>`, so audit queries can filter on it. */
  model: z.string(),
  prompt: z.string(),
  /** full: outputs kept; redacted or hash: only their hashes (the lane's audit.bodies). */
  bodies: z.enum(['full', 'redacted', 'hash']),
  /** Where the checks came from: the eval set, and the case whose variables matched the request (if any). */
  checks_from: z.object({ set: z.string(), case: z.string().nullable() }).nullable(),
  /** Both answered the same (content compared with whitespace collapsed, tool calls by name and arguments); null when either failed. */
  agreement: z.boolean().nullable(),
  live: runSide,
  shadow: runSide,
  ...chainFields,
});

export type PromptPromotionRecord = z.infer<typeof promptPromotionRecordSchema>;
export type PromptRollbackRecord = z.infer<typeof promptRollbackRecordSchema>;
export type ShadowRunRecord = z.infer<typeof shadowRunRecordSchema>;
export type ShadowRunSide = z.infer<typeof runSide>;
