// The shape of config/gateway.yaml. Objects are strict so a typo in a key is a
// load error that names the key, not a setting silently ignored.
import { z } from 'zod';
import { budgetsConfigSchema, priceSchema, rateLimitSchema, runLimitSchema } from '../budget/schema.js';
import { cacheConfigSchema, cacheRuleSchema } from '../cache/schema.js';
import { admissionConfigSchema } from '../admission/config.js';
import { auditConfigSchema } from '../audit/config.js';
import { telemetryConfigSchema } from '../telemetry/config.js';
import { promptsConfigSchema } from '../prompts/config.js';
import { toolRunsSchema } from '../mcp/tool-runs.js';
import { mcpServersSchema } from '../mcp/config.js';
import { queueConfigSchema } from '../queue/config.js';
import { filesConfigSchema } from '../files/config.js';
import { isAddressOrRange } from '../server/client-address.js';

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

const retry = z.strictObject({
  /** Retries on the same deployment before moving to the next candidate. */
  max_retries: z.number().int().min(0).max(10).default(1),
  base_delay_ms: z.number().int().min(0).default(100),
  max_delay_ms: z.number().int().min(0).default(2_000),
  /** A `retry-after` longer than this moves on to the next candidate instead of waiting. */
  max_retry_after_ms: z.number().int().min(0).default(5_000),
  /** Retries may add at most this share of a deployment's requests... */
  budget_ratio: z.number().min(0).max(1).default(0.2),
  /** ...plus this many per second, so a quiet deployment can still retry. */
  budget_min_per_second: z.number().min(0).default(1),
});

const breaker = z.strictObject({
  enabled: z.boolean().default(true),
  /** Opens after this many failures in a row... */
  consecutive_failures: z.number().int().positive().default(5),
  /** ...or when this share of requests in the window failed (given min_requests). */
  error_rate: z.number().gt(0).max(1).default(0.5),
  window_ms: z.number().int().positive().default(30_000),
  min_requests: z.number().int().positive().default(20),
  /** How long it stays open before one probe request is let through. */
  cooldown_ms: z.number().int().positive().default(15_000),
});

/**
 * An upstream 429 is the provider's quota, not the deployment's health: the
 * deployment rests for the provider's `retry-after` (or `retry-after-ms`),
 * capped, and balancing and fallback go elsewhere meanwhile. The breaker
 * never counts it.
 */
const rateLimitCooldown = z.strictObject({
  /** The rest after a 429 that names no retry-after. */
  default_ms: z.number().int().min(0).default(1_000),
  /** The longest rest, whatever the provider asks: rate-limit windows are per minute, so a minute frees any of them. */
  max_ms: z.number().int().min(0).default(60_000),
});

/**
 * Bounds on what a provider may send back; an answer past one ends the
 * attempt with 502 upstream_error and closes the connection. A chat answer is
 * rarely above 1 MiB (128k tokens of text); embeddings are the big ones: 2,048
 * inputs of 1,536 floats as JSON text are about 60 MiB, so batches that large
 * need a higher max_response_bytes (or encoding_format: base64, a quarter of that).
 */
const responseLimits = z.strictObject({
  /** A non-streamed answer's body. */
  max_response_bytes: z.number().int().positive().max(1024 * 1024 * 1024).default(32 * 1024 * 1024),
  /** One server-sent event of a stream (a chunk is a few hundred bytes; a whole tool call's arguments at most). */
  max_event_bytes: z.number().int().positive().max(256 * 1024 * 1024).default(4 * 1024 * 1024),
  /** Nesting of a JSON answer or event, checked before it is parsed, as server.max_json_depth is for requests. */
  max_json_depth: z.number().int().min(2).max(1000).default(64),
});

const httpProvider = {
  base_url: z.url({ protocol: /^https?$/, error: 'expected an http(s) URL' }),
  api_key: z.string().default(''),
  headers: z.record(z.string(), z.string()).default({}),
  timeouts: timeouts.prefault({}),
  retry: retry.prefault({}),
  breaker: breaker.prefault({}),
  rate_limit_cooldown: rateLimitCooldown.prefault({}),
  response_limits: responseLimits.prefault({}),
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
  /** The upstream speaks the Responses API (OpenAI does): POST /v1/responses requests go to it as they are, not translated to chat. */
  responses_api: z.boolean().default(false),
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
  retry: retry.prefault({}),
  breaker: breaker.prefault({}),
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
  /** Per-deployment overrides of the provider's settings. */
  timeouts: timeouts.partial().optional(),
  retry: retry.partial().optional(),
  breaker: breaker.partial().optional(),
  rate_limit_cooldown: rateLimitCooldown.partial().optional(),
  response_limits: responseLimits.partial().optional(),
});

const slo = z.strictObject({
  /** A request is good when it succeeds within this time... */
  latency_ms: z.number().int().positive(),
  /** ...and the objective is that this share of requests is good. */
  target: z.number().gt(0).lt(1),
});

const degrade = z.strictObject({
  /** The cheaper model that answers when every candidate is unavailable. */
  model: name,
  max_tokens: z.number().int().positive().default(256),
  /** Added as a system message so the answer knows it is a degraded one. */
  notice: z.string().default('The service is in a degraded mode. Answer briefly and say that a fuller answer may follow later.'),
});

const model = z.strictObject({
  type: z.enum(['chat', 'embedding']).default('chat'),
  description: z.string().optional(),
  /**
   * How the deployments share traffic: `priority` tries them in the order
   * listed; `weighted` spreads by weight; `least_latency` picks the lower
   * peak-EWMA time to first token of two random ones; `least_busy` the one
   * with the fewest requests in flight. The others follow as fallbacks.
   */
  balance: z.enum(['priority', 'weighted', 'least_latency', 'least_busy']).default('priority'),
  deployments: z.array(deployment).min(1, 'a model needs at least one deployment'),
  /** Other models tried, in order, after all of this model's deployments failed. */
  fallbacks: z.array(name).default([]),
  degrade: degrade.optional(),
  slo: slo.optional(),
  /** Response cache TTL and rules for this model (see cache:). */
  cache: cacheRuleSchema.optional(),
});

const ruleMatch = z.strictObject({
  apps: z.array(name).min(1).optional(),
  teams: z.array(name).min(1).optional(),
  keys: z.array(name).min(1).optional(),
  lanes: z.array(name).min(1).optional(),
  /** From `x-gateway-priority` or the body's `metadata.priority`. */
  priority: z.array(z.string().min(1)).min(1).optional(),
  /** Any of these, from `x-gateway-tags` (comma separated) or `metadata.tags`. */
  tags: z.array(z.string().min(1)).min(1).optional(),
  /** Estimated with tiktoken, counted only when a rule that needs it is reached. */
  min_prompt_tokens: z.number().int().min(0).optional(),
  max_prompt_tokens: z.number().int().min(0).optional(),
  has_tools: z.boolean().optional(),
  has_images: z.boolean().optional(),
  response_format: z.array(z.enum(['text', 'json_object', 'json_schema'])).min(1).optional(),
  stream: z.boolean().optional(),
});

const routeRule = z.strictObject({
  name,
  /** Every condition given must hold. A rule without `match` must be `default: true`. */
  match: ruleMatch.optional(),
  default: z.boolean().default(false),
  model: name,
});

const route = z.strictObject({
  description: z.string().optional(),
  /** First match wins; the last rule must be the `default: true` one. */
  rules: z.array(routeRule).min(1),
  slo: slo.optional(),
  /** Response cache TTL and rules for requests through this route; they win over the chosen model's. */
  cache: cacheRuleSchema.optional(),
});

const apiKey = z.strictObject({
  id: name,
  sha256: sha256Hex,
  app: name,
  team: name,
  /** Model names this key may call; "*" for all. */
  models: z.array(z.string().min(1)).default(['*']),
  /** The key's default lane (the policies' default_lane if unset). Requests may move to a stricter one, never a looser one. */
  lane: z.string().optional(),
  /** Lanes requests with this key may ask for (default: the key's lane and every stricter one). */
  lanes: z.array(z.string()).min(1).optional(),
});

/**
 * A person in the loop (src/auth/people.ts): a name for the audit trail, one
 * role, and their key as a sha256 digest or as the key itself from the
 * environment (`key: ${CONSOLE_KEY_ALICE}`), hashed at load and never kept.
 */
const person = z
  .strictObject({
    name: z.string().min(1).max(200).refine((n) => !/\p{Cc}/u.test(n), 'expected a name without control characters'),
    role: z.enum(['admin', 'approver', 'finance', 'auditor']),
    sha256: sha256Hex.optional(),
    key: z.string().min(16, 'a person key needs at least 16 characters').max(512).optional(),
  })
  .refine((p) => (p.sha256 === undefined) !== (p.key === undefined), { message: 'give exactly one of sha256 (run `lanegate hash-key <key>`) or key (e.g. key: ${CONSOLE_KEY})' });

export const gatewayConfigSchema = z.strictObject({
  server: z
    .strictObject({
      port: z.number().int().min(0).max(65535).default(8787),
      host: z.string().default('0.0.0.0'),
      body_limit_bytes: z.number().int().positive().max(1024 * 1024 * 1024).default(8 * 1024 * 1024),
      max_json_depth: z.number().int().min(2).max(1000).default(64),
      body_timeout_ms: z.number().int().positive().default(30_000),
      /** The request line and headers must arrive within this (checked every quarter of it, at most every second). */
      header_timeout_ms: z.number().int().min(100).max(600_000).default(10_000),
      /** After an answer sent before the body was read: how long and how much of the rest is read and discarded before the connection closes. */
      drain_timeout_ms: z.number().int().min(0).max(60_000).default(5_000),
      drain_max_bytes: z.number().int().min(0).max(1024 * 1024 * 1024).default(16 * 1024 * 1024),
      /** Content-Encodings a request body may use; the body limit applies to the decoded bytes. */
      request_encodings: z.array(z.enum(['gzip', 'deflate', 'br'])).default(['gzip', 'deflate', 'br']),
      shutdown_grace_ms: z.number().int().min(0).default(15_000),
      /**
       * Proxies (addresses or CIDR ranges) whose X-Forwarded-For and
       * X-Forwarded-Proto the gateway believes (src/server/client-address.ts).
       * Empty: the socket's peer is the client and those headers are ignored.
       */
      trusted_proxies: z
        .array(z.string().refine(isAddressOrRange, { message: 'give an IP address or a CIDR range such as 10.0.0.0/8 or ::1' }))
        .default([]),
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
  /** Keys for the people in the loop, each with a role, for the admin API and the console. */
  people: z.array(person).default([]),
  /** The web console for people (src/console/): sessions, sign-in limits. */
  console: z
    .strictObject({
      enabled: z.boolean().default(true),
      /** A session ends this long after sign-in. */
      session_ttl_ms: z.number().int().min(60_000).max(7 * 86_400_000).default(8 * 3_600_000),
      /** Failed or not, sign-in attempts per client address per minute. */
      sign_in_per_minute: z.number().int().min(1).max(1_000).default(10),
    })
    .prefault({}),
  providers: z.record(name, providerSchema),
  models: z.record(name, model),
  policies: z
    .strictObject({
      /** Folder of lane policy files (*.yaml), relative to this file. Unset: one permissive lane. */
      dir: z.string().optional(),
    })
    .prefault({}),
  /** Names apps ask for whose model is chosen per request by rules. */
  routes: z.record(name, route).default({}),
  /** USD per million tokens by upstream model name ("gpt-4o") or deployment id ("openai/gpt-4o"); merged over the built-in table. */
  pricing: z.record(z.string().min(1), priceSchema).default({}),
  budgets: budgetsConfigSchema,
  rate_limits: z.array(rateLimitSchema).default([]),
  run_limits: z.array(runLimitSchema).default([]),
  /** Run budgets for tool calls through /mcp: per run and per key and tool (src/mcp/tool-runs.ts). */
  tool_runs: toolRunsSchema,
  /** Response and embeddings cache; who may share an entry is the lane's `cache` scope. */
  cache: cacheConfigSchema,
  redis: z
    .strictObject({
      /** Empty: single-instance mode, every store in memory. */
      url: z.string().default(''),
      key_prefix: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/).default('lanegate'),
      /** How long a command waits for its reply; a timeout counts as the store being unreachable. */
      command_timeout_ms: z.number().int().min(10).max(60_000).default(1_000),
      /** This many command timeouts in a row mark Redis down: commands fail at once (as timeouts)... */
      down_after_timeouts: z.number().int().positive().max(1_000).default(3),
      /** ...for this long, then one probe command decides whether it is back. */
      down_cooldown_ms: z.number().int().positive().max(600_000).default(2_000),
    })
    .prefault({}),
  /** Requests in flight and wait queues, global and per deployment (src/admission/config.ts). */
  admission: admissionConfigSchema,
  /** The audit trail: sinks, spool, retention (src/audit/config.ts). */
  audit: auditConfigSchema,
  /** OpenTelemetry traces (src/telemetry/config.ts); off unless otlp_endpoint is set. */
  telemetry: telemetryConfigSchema,
  /** Prompt templates, tool schemas, eval sets and pins (src/prompts/config.ts). */
  prompts: promptsConfigSchema,
  /** Upstream MCP servers served behind /mcp (src/mcp/config.ts); their tools are named `<server>__<tool>`. */
  mcp_servers: mcpServersSchema,
  /** The durable work queue for batch lines and background responses (src/queue/config.ts). */
  queue: queueConfigSchema,
  /** Batch files (the Files API): store, folder or bucket, limits (src/files/config.ts). */
  files: filesConfigSchema,
});

export type GatewayConfig = z.infer<typeof gatewayConfigSchema>;
export type ProviderConfig = z.infer<typeof providerSchema>;
export type DeploymentConfig = z.infer<typeof deployment>;
export type ModelConfig = z.infer<typeof model>;
export type ApiKeyConfig = z.infer<typeof apiKey>;
export type PersonConfig = z.infer<typeof person>;
export type RetryConfig = z.infer<typeof retry>;
export type BreakerConfig = z.infer<typeof breaker>;
export type TimeoutsConfig = z.infer<typeof timeouts>;
export type RateLimitCooldownConfig = z.infer<typeof rateLimitCooldown>;
export type ResponseLimitsConfig = z.infer<typeof responseLimits>;
/** Defaults for providers without these settings (the mock). */
export const DEFAULT_RATE_LIMIT_COOLDOWN: RateLimitCooldownConfig = rateLimitCooldown.parse({});
export const DEFAULT_RESPONSE_LIMITS: ResponseLimitsConfig = responseLimits.parse({});
export type RouteConfig = z.infer<typeof route>;
export type RouteRuleConfig = z.infer<typeof routeRule>;
export type SloConfig = z.infer<typeof slo>;
export type DegradeConfig = z.infer<typeof degrade>;
