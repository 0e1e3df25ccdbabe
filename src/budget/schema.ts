// Config for what requests may cost: prices, budgets, rate limits and run
// limits. Part of config/gateway.yaml.
import { z } from 'zod';

const usd = z.number().min(0).max(1_000_000);

export const priceSchema = z.strictObject({
  /** USD per million input tokens. */
  input: usd,
  /**
   * USD per million input tokens read from the provider's prompt cache.
   * Defaults by provider: 0.1x input for Anthropic, 0.5x for OpenAI-style.
   */
  cache_read: usd.optional(),
  /** The same as cache_read (its earlier name); cache_read wins when both are set. */
  cached_input: usd.optional(),
  /** USD per million input tokens written to the prompt cache (Anthropic cache_control). Defaults to 1.25x input for Anthropic, input elsewhere. */
  cache_write: usd.optional(),
  /** USD per million output tokens. */
  output: usd,
  /** USD added to every request, where a provider charges one. */
  per_request: usd.default(0),
  /** The model's largest possible answer, used to reserve the worst case when the app sets no max_tokens. */
  max_output_tokens: z.number().int().positive().default(16_384),
  /** Share of the price taken off for batch lines (OpenAI's Batch API: 0.5); 0 charges them in full. */
  batch_discount: z.number().min(0).max(1).default(0),
});

const subjectScope = z.enum(['key', 'app', 'team', 'global']);
const periods = z.enum(['minute', 'day', 'month']);

export const budgetSchema = z
  .strictObject({
    name: z.string().regex(/^[a-z0-9][a-z0-9_-]{0,63}$/, 'expected a lowercase name of letters, digits, "_" or "-"'),
    /** Who shares one counter: each key, each app, each team, or everyone. */
    scope: subjectScope,
    /** Only these keys/apps/teams (by id); unset: every one, each with its own counter. */
    match: z.array(z.string().min(1)).min(1).optional(),
    /** `minute` is a rolling minute; `day` and `month` are calendar periods in budgets.timezone. */
    period: periods,
    usd: usd.optional(),
    tokens: z.number().int().positive().optional(),
    requests: z.number().int().positive().optional(),
    /** When the store is unreachable: refuse (503, nothing spent upstream) or serve with local accounting. */
    on_store_error: z.enum(['fail_closed', 'fail_open']).optional(),
  })
  .refine((b) => b.usd !== undefined || b.tokens !== undefined || b.requests !== undefined, {
    message: 'a budget needs at least one of usd, tokens, requests',
  });

export const rateLimitSchema = z
  .strictObject({
    name: z.string().regex(/^[a-z0-9][a-z0-9_-]{0,63}$/),
    scope: z.enum(['key', 'team']),
    match: z.array(z.string().min(1)).min(1).optional(),
    requests_per_minute: z.number().int().positive().optional(),
    /** Reserved as OpenAI counts them (prompt tokens plus max_tokens) at admission, settled to the tokens used. */
    tokens_per_minute: z.number().int().positive().optional(),
  })
  .refine((r) => r.requests_per_minute !== undefined || r.tokens_per_minute !== undefined, {
    message: 'a rate limit needs requests_per_minute or tokens_per_minute',
  });

export const runLimitSchema = z.strictObject({
  /** Applies to requests of these keys, or to these routes/models (by the name apps ask for). */
  keys: z.array(z.string().min(1)).min(1).optional(),
  routes: z.array(z.string().min(1)).min(1).optional(),
  max_tool_calls: z.number().int().min(0).optional(),
  max_tools: z.number().int().min(0).optional(),
  max_output_tokens: z.number().int().positive().optional(),
  /** Over max_output_tokens: lower the request's max_tokens to it, or refuse the request. */
  on_max_output_tokens: z.enum(['clamp', 'reject']).default('clamp'),
  /** Wall clock for the whole request, streams included. */
  max_runtime_ms: z.number().int().positive().optional(),
  max_concurrent: z.number().int().positive().optional(),
});

export const budgetsConfigSchema = z
  .strictObject({
    /** Calendar days and months are counted in this IANA time zone. */
    timezone: z.string().default('UTC'),
    /** Output tokens reserved up front for a stream; more is reserved in steps as it flows. */
    stream_slice_tokens: z.number().int().positive().default(512),
    /** A crashed request's reservation is released after this long. */
    reservation_ttl_ms: z.number().int().positive().default(600_000),
    rules: z.array(budgetSchema).default([]),
  })
  .prefault({});

export type PriceConfig = z.infer<typeof priceSchema>;
export type BudgetConfig = z.infer<typeof budgetSchema>;
export type RateLimitConfig = z.infer<typeof rateLimitSchema>;
export type RunLimitConfig = z.infer<typeof runLimitSchema>;
export type BudgetsConfig = z.infer<typeof budgetsConfigSchema>;
