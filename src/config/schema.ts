// The shape of config/gateway.yaml. Objects are strict so a typo in a key is a
// load error that names the key, not a setting silently ignored.
import { z } from 'zod';

const sha256Hex = z
  .string()
  .regex(/^[0-9a-f]{64}$/, 'expected a lowercase hex sha256 (run `lanegate hash-key <key>`)');

// Deployment ids end up in URL paths (Azure-style URLs), so they are restricted
// to characters that cannot change a path's meaning.
export const SAFE_PATH_SEGMENT = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;
const pathSegment = z
  .string()
  .regex(SAFE_PATH_SEGMENT, 'expected letters, digits, ".", "_", ":" or "-" (it becomes part of an upstream URL)');

const name = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$/, 'expected a name of letters, digits, ".", "_", ":", "/" or "-"');

const timeouts = z.strictObject({
  connect_ms: z.number().int().positive().default(5_000),
  first_byte_ms: z.number().int().positive().default(60_000),
  total_ms: z.number().int().positive().default(600_000),
});

const httpProvider = {
  base_url: z.url({ protocol: /^https?$/, error: 'expected an http(s) URL' }),
  api_key: z.string().default(''),
  headers: z.record(z.string(), z.string()).default({}),
  timeouts: timeouts.prefault({}),
  connections: z.number().int().positive().max(1024).default(128),
};

const openaiProvider = z.strictObject({
  type: z.literal('openai'),
  ...httpProvider,
  /** `azure` builds /openai/deployments/{model}/... URLs with `api-key` auth. */
  api_style: z.enum(['openai', 'azure']).default('openai'),
  api_version: z.string().regex(/^[0-9A-Za-z.-]{1,40}$/).optional(),
  /** Upstreams that need no key (vLLM, Ollama) set this to false. */
  requires_key: z.boolean().default(true),
});

const anthropicProvider = z.strictObject({
  type: z.literal('anthropic'),
  ...httpProvider,
  anthropic_version: z.string().default('2023-06-01'),
  requires_key: z.boolean().default(true),
});

const mockProvider = z.strictObject({
  type: z.literal('mock'),
  /** Added before every answer, to simulate a slow model. */
  latency_ms: z.number().int().min(0).max(600_000).default(0),
  /** Pause between streamed chunks. */
  chunk_delay_ms: z.number().int().min(0).max(60_000).default(0),
  timeouts: timeouts.prefault({}),
});

export const providerSchema = z.discriminatedUnion('type', [openaiProvider, anthropicProvider, mockProvider]);

const deployment = z.strictObject({
  provider: name,
  /** The upstream model name; for Azure-style providers, the deployment id. */
  model: pathSegment,
  /** Default request parameters, applied when the app does not set them. */
  params: z.record(z.string(), z.unknown()).default({}),
  weight: z.number().positive().default(1),
  /**
   * Used only when no other deployment of the model is enabled, so the shipped
   * config answers with the mock until a real provider key is set, and never
   * falls back to it once one is.
   */
  standby: z.boolean().default(false),
});

const model = z.strictObject({
  type: z.enum(['chat', 'embedding']).default('chat'),
  description: z.string().optional(),
  /** In order of preference; later ones are the fallback chain. */
  deployments: z.array(deployment).min(1, 'a model needs at least one deployment'),
});

const apiKey = z.strictObject({
  id: name,
  sha256: sha256Hex,
  app: name,
  team: name,
  /** Model names this key may call; "*" for all. */
  models: z.array(z.string().min(1)).default(['*']),
});

export const gatewayConfigSchema = z.strictObject({
  server: z
    .strictObject({
      port: z.number().int().min(0).max(65535).default(8787),
      host: z.string().default('0.0.0.0'),
      body_limit_bytes: z.number().int().positive().max(1024 * 1024 * 1024).default(8 * 1024 * 1024),
      max_json_depth: z.number().int().min(2).max(1000).default(64),
      body_timeout_ms: z.number().int().positive().default(30_000),
      shutdown_grace_ms: z.number().int().min(0).default(15_000),
    })
    .prefault({}),
  logging: z
    .strictObject({
      level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
      access_log: z.boolean().default(true),
    })
    .prefault({}),
  auth: z
    .strictObject({
      mode: z.enum(['keys', 'none']).default('keys'),
      admin_key_sha256: sha256Hex.optional(),
      /** Identity used for every request in `mode: none` (development only). */
      anonymous: z.strictObject({ app: name, team: name }).default({ app: 'anonymous', team: 'anonymous' }),
    })
    .prefault({}),
  keys: z.array(apiKey).default([]),
  providers: z.record(name, providerSchema),
  models: z.record(name, model),
  audit: z
    .strictObject({
      sink: z.enum(['file', 'off']).default('file'),
      dir: z.string().default('./data/audit'),
      queue_size: z.number().int().positive().default(10_000),
    })
    .prefault({}),
});

export type GatewayConfig = z.infer<typeof gatewayConfigSchema>;
export type ProviderConfig = z.infer<typeof providerSchema>;
export type DeploymentConfig = z.infer<typeof deployment>;
export type ModelConfig = z.infer<typeof model>;
export type ApiKeyConfig = z.infer<typeof apiKey>;
