// An eval set, config/evals/<name>/<version>.yaml: the header and the cases.
//
//   eval_set: {prompt: triage, threshold: 0.9, description: "...", judge_model: smart, shadow_checks: [...]}
//   cases:
//     - {id: double-charge, variables: {ticket: "..."}, checks: [{type: contains, value: billing}]}
//
// The same set may be written as <version>.jsonl: the header on the first
// line, then one case a line.
//
// The threshold lives in the file it gates, so a reviewer sees the bar and
// the cases in one diff.
import { z } from 'zod';

const exact = z.strictObject({
  type: z.literal('exact'),
  value: z.string(),
  /** Compare after trimming whitespace at both ends (default true). */
  trim: z.boolean().default(true),
});
const contains = z.strictObject({
  type: z.literal('contains'),
  value: z.string().min(1),
  ignore_case: z.boolean().default(false),
  /** Passes when the text is absent instead. */
  not: z.boolean().default(false),
});
const regex = z.strictObject({
  type: z.literal('regex'),
  pattern: z.string().min(1),
  flags: z.string().default(''),
  not: z.boolean().default(false),
});
const jsonSchema = z.strictObject({
  type: z.literal('json_schema'),
  schema: z.record(z.string(), z.unknown()),
});
const toolCall = z.strictObject({
  type: z.literal('tool_call'),
  name: z.string().min(1),
  /** Expected arguments: each one given must equal the call's (others may be present, unless exact_arguments). */
  arguments: z.record(z.string(), z.unknown()).optional(),
  exact_arguments: z.boolean().default(false),
});
const judge = z.strictObject({
  type: z.literal('judge'),
  rubric: z.string().min(1),
  /** The model (or route) that judges; default: the set's judge_model. */
  model: z.string().min(1).optional(),
});

export const plainCheckSchema = z.discriminatedUnion('type', [exact, contains, regex, jsonSchema, toolCall]);
export const checkSchema = z.discriminatedUnion('type', [exact, contains, regex, jsonSchema, toolCall, judge]);

export const evalHeaderSchema = z.strictObject({
  eval_set: z.strictObject({
    /** The prompt this set is for; default: the folder name. */
    prompt: z.string().optional(),
    /** The share of cases that must pass, 0 < threshold <= 1. */
    threshold: z.number().gt(0).max(1),
    description: z.string().optional(),
    judge_model: z.string().min(1).optional(),
    /** Checks every output must pass, applied to live and shadow outputs of sampled requests. */
    shadow_checks: z.array(plainCheckSchema).default([]),
  }),
});

export const evalCaseSchema = z.strictObject({
  id: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/, 'case ids are letters, digits, ".", "_" or "-"'),
  variables: z.record(z.string(), z.unknown()).default({}),
  checks: z.array(checkSchema).min(1, 'a case needs at least one check'),
  note: z.string().optional(),
});

export type CheckConfig = z.infer<typeof checkSchema>;
export type PlainCheckConfig = z.infer<typeof plainCheckSchema>;
export type EvalCaseConfig = z.infer<typeof evalCaseSchema>;
export type EvalHeader = z.infer<typeof evalHeaderSchema>['eval_set'];

/** Most cases a set may hold; the README recommends 10 to 30. */
export const MAX_CASES = 500;
