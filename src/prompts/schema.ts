// The shapes of the prompt artifacts: templates (config/prompts/<name>/<version>.yaml),
// tool schemas (config/tools/<name>/<version>.json) and the pins file.
import { z } from 'zod';
import { VARIABLE_NAME, variableSchema } from './variables.js';

/** Prompt and tool names: folder names, and part of `prompt:<name>@<version>`. */
export const ARTIFACT_NAME = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;
/** Versions: file names without the extension, such as v12. */
export const VERSION = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

const version = z.string().regex(VERSION, 'expected a version such as "v12" (letters, digits, ".", "_" or "-")');
const toolRef = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_-]{0,63}@[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, 'expected a tool schema reference such as "create_ticket@v1"');

/**
 * Request fields a template may not set as parameters: they are the template's
 * own sections (model, messages, tools), the app's to decide (stream, user,
 * metadata), or the gateway's (prompt, variables).
 */
export const RESERVED_PARAMETERS = ['model', 'messages', 'tools', 'stream', 'stream_options', 'user', 'metadata', 'prompt', 'variables', 'functions', 'function_call'] as const;

export const templateFileSchema = z.strictObject({
  description: z.string().optional(),
  /** Free-form: owner, change note, ticket links... shown by the admin API. */
  metadata: z.looseObject({ owner: z.string().optional(), change: z.string().optional() }).default({}),
  /** The model or route the rendered request goes to. */
  model: z.string().min(1),
  /** Request fields the template fixes (temperature, max_tokens, response_format, tool_choice...). */
  parameters: z.record(z.string(), z.unknown()).default({}),
  variables: z.record(z.string().regex(VARIABLE_NAME, 'variable names are letters, digits and "_" (not starting with a digit)'), variableSchema).default({}),
  /** Tool schemas offered to the model, by `name@version`. */
  tools: z.array(toolRef).default([]),
  messages: z
    .array(
      z.strictObject({
        role: z.enum(['system', 'developer', 'user', 'assistant']),
        content: z.string(),
        name: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/).optional(),
      }),
    )
    .min(1, 'a template needs at least one message'),
  /** When true, messages the app sends are appended after the template's (a conversation). */
  accepts_messages: z.boolean().default(false),
});

export type TemplateFile = z.infer<typeof templateFileSchema>;

/** A tool schema file: the `function` object of an OpenAI tool. */
export const toolFileSchema = z.strictObject({
  name: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'tool names are 1-64 letters, digits, "_" or "-"'),
  description: z.string().optional(),
  parameters: z.looseObject({ type: z.literal('object', 'a tool\'s parameters are a JSON schema with type "object"') }),
  strict: z.boolean().optional(),
});

export type ToolFile = z.infer<typeof toolFileSchema>;

const canary = z.strictObject({
  version,
  /** Share of the requests that get the canary, 0 < weight <= 1. */
  weight: z.number().gt(0, 'weight is a share of requests, above 0').max(1, 'weight is a share of requests, at most 1'),
});
const shadow = z.strictObject({
  version,
  /** Share of live requests also run, in the background, on the shadow version. */
  sample: z.number().gt(0, 'sample is a share of requests, above 0').max(1, 'sample is a share of requests, at most 1'),
});
/** false: pinned versions only; true: any version; a list: those versions. */
const exactVersions = z.union([z.boolean(), z.array(version)]);

const appPin = z.union([
  version,
  z.strictObject({
    live: version,
    canary: canary.optional(),
    shadow: shadow.optional(),
    exact_versions: exactVersions.optional(),
  }),
]);

const pinObject = z
  .strictObject({
    live: version,
    canary: canary.optional(),
    /** `{version, sample}`, or the version alone with `sample` beside it. */
    shadow: z.union([shadow, version]).optional(),
    sample: z.number().gt(0).max(1).optional(),
    exact_versions: exactVersions.default(false),
    /** The eval set `lanegate promote` gates on and shadow runs check against. Default: the newest. */
    eval_set: version.optional(),
    /** Versions that were live before, oldest first; `lanegate rollback` goes back to the last one. */
    history: z.array(version).default([]),
    /** Per-app pins, by the app named in the key's config entry. */
    apps: z.record(z.string().min(1), appPin).default({}),
  })
  .superRefine((p, ctx) => {
    if (typeof p.shadow === 'string' && p.sample === undefined) ctx.addIssue({ code: 'custom', path: ['sample'], message: `shadow: ${p.shadow} needs sample: the share of requests to run it on (e.g. 0.2)` });
    if (typeof p.shadow !== 'string' && p.sample !== undefined) ctx.addIssue({ code: 'custom', path: ['sample'], message: 'sample goes with `shadow: <version>`; with `shadow: {version, sample}` remove it' });
  });

export const pinsFileSchema = z.record(z.string().regex(ARTIFACT_NAME, 'prompt names are letters, digits, "_" or "-"'), z.union([version, pinObject]));

export type PinsFile = z.infer<typeof pinsFileSchema>;
export type PinObject = z.infer<typeof pinObject>;
export type AppPinConfig = z.infer<typeof appPin>;
export type ExactVersions = z.infer<typeof exactVersions>;
