// The shape of policies/*.yaml: lanes (green, amber, red or an organisation's
// own), the custom detectors they use and the catalogue of tools they govern.
// Several files may each define some of these; a name defined twice is an
// error, never a silent override.
import { z } from 'zod';
import { canonicalAddress, canonicalDomainPattern } from './recipients.js';

const name = z.string().regex(/^[a-z][a-z0-9_-]{0,63}$/, 'expected a lowercase name of letters, digits, "_" or "-"');
const toolName = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'expected a tool name of 1-64 letters, digits, "_" or "-"');
// Recipients are compared in ASCII and lower case (recipients.ts), so the policy's side is put in that form here, once.
const domain = z
  .string()
  .refine((d) => canonicalDomainPattern(d) !== undefined, 'expected a domain such as "example.com", "*.example.com" or "bücher.example"')
  .transform((d) => canonicalDomainPattern(d)!);
const address = z
  .string()
  .refine((a) => canonicalAddress(a) !== undefined, 'expected one e-mail address such as "jane@example.com"')
  .transform((a) => canonicalAddress(a)!);

export const DETECTOR_ACTIONS = ['allow', 'redact', 'block', 'escalate'] as const;

const detectorRule = z.union([
  z.enum(['allow', 'redact', 'block']),
  z.strictObject({ action: z.enum(['allow', 'redact', 'block']) }),
  z.strictObject({
    action: z.literal('escalate'),
    /** The stricter lane the request moves to; that lane's rules then apply. */
    lane: name,
  }),
]);

const recipients = z.strictObject({
  /** Argument fields that hold recipients; defaults to to, cc, bcc, recipients. */
  fields: z.array(z.string().min(1)).min(1).default(['to', 'cc', 'bcc', 'recipients']),
  allow_domains: z.array(domain).default([]),
  allow_addresses: z.array(address).default([]),
  /** Most recipients one call may name, over all fields. */
  max: z.number().int().positive().optional(),
});

const paths = z.strictObject({
  /** Argument fields that hold file paths (a string or an array of them); defaults to path, paths, file, files. */
  fields: z.array(z.string().min(1)).min(1).default(['path', 'paths', 'file', 'files']),
  /** Absolute folders every path must stay inside; relative paths are taken from the first. */
  roots: z.array(z.string().regex(/^\//, 'expected an absolute path such as "/srv/repo"')).min(1),
  /** Most paths (files changed) one call may name, over all fields. */
  max_files: z.number().int().positive().optional(),
});

const laneTools = z.strictObject({
  /** Tools the app may offer and the model may call; "*" for every catalogued tool not denied. Names match in canonical form (tool-name.ts). */
  allow: z.array(z.union([z.literal('*'), toolName])).default(['*']),
  deny: z.array(toolName).default([]),
  /** What happens to a request offering a denied tool: refuse it, or remove the tool and go on. */
  on_denied: z.enum(['reject', 'strip']).default('reject'),
  /** Calls to these are held for a human's approval instead of being handed to the app. */
  require_approval: z.array(toolName).default([]),
  /** Recipient rules for every tool call that carries recipient fields. */
  recipients: recipients.optional(),
  /** Path rules for every tool call that carries path fields (MCP tools that read or write files). */
  paths: paths.optional(),
});

export const laneSchema = z.strictObject({
  /** Strictness: a higher rank is stricter. Requests may move up, never down. */
  rank: z.number().int().min(0).max(1000),
  description: z.string().default(''),
  /** Providers ("openai") or deployments ("openai/gpt-4o-mini") this lane may use; "*" for all. */
  deployments: z.array(z.string().min(1)).min(1).default(['*']),
  /** How widely responses may be cached. Enforced by the response cache. */
  cache: z.enum(['shared', 'team', 'key', 'off']).default('off'),
  audit: z
    .strictObject({
      /** What the audit trail keeps of request and response bodies. */
      bodies: z.enum(['full', 'redacted', 'hash']).default('redacted'),
      retention_days: z.number().int().positive().max(36_500).default(90),
    })
    .prefault({}),
  /** Detector name -> what to do when it finds something. Unlisted detectors do not run. */
  detectors: z.record(z.string(), detectorRule).default({}),
  /** Put redacted values back into the response the app receives. */
  restore_redactions: z.boolean().default(false),
  tools: laneTools.prefault({}),
  /** Request metadata keys (body `metadata` or `x-gateway-meta-<key>` headers) that must be present. */
  required_metadata: z.array(z.string().regex(/^[a-z0-9_-]{1,64}$/)).default([]),
});

export const policyFileSchema = z.strictObject({
  /** The lane of keys that name none. Exactly one file must set it. */
  default_lane: name.optional(),
  detectors: z
    .record(
      name,
      z.strictObject({
        description: z.string().optional(),
        /** A regular expression; it must run in linear time (no backreferences or lookaround). */
        pattern: z.string().min(1).max(1000),
        flags: z.string().regex(/^[imsu]*$/, 'flags may only be i, m, s and u').default(''),
      }),
    )
    .default({}),
  tools: z
    .record(
      toolName,
      z.strictObject({
        description: z.string().optional(),
      }),
    )
    .default({}),
  lanes: z.record(name, laneSchema).default({}),
});

export type PolicyFile = z.infer<typeof policyFileSchema>;
export type LaneConfig = z.infer<typeof laneSchema>;
export type DetectorRule = z.infer<typeof detectorRule>;
