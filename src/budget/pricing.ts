// What a request costs, from the upstream's reported usage (never a guess
// when usage is known). Amounts are integer nano-dollars so that sums over
// millions of requests stay exact to the cent.
import type { Usage } from '../api/schemas.js';
import type { Deployment } from '../providers/types.js';
import type { PriceConfig } from './schema.js';

/** USD per million tokens for common models (list prices; override under `pricing:`). */
export const DEFAULT_PRICES: Record<string, Omit<PriceConfig, 'per_request' | 'max_output_tokens' | 'batch_discount'> & { max_output_tokens?: number }> = {
  'gpt-4o': { input: 2.5, cached_input: 1.25, output: 10, max_output_tokens: 16_384 },
  'gpt-4o-mini': { input: 0.15, cached_input: 0.075, output: 0.6, max_output_tokens: 16_384 },
  'gpt-4.1': { input: 2, cached_input: 0.5, output: 8, max_output_tokens: 32_768 },
  'gpt-4.1-mini': { input: 0.4, cached_input: 0.1, output: 1.6, max_output_tokens: 32_768 },
  'gpt-4.1-nano': { input: 0.1, cached_input: 0.025, output: 0.4, max_output_tokens: 32_768 },
  o3: { input: 2, cached_input: 0.5, output: 8, max_output_tokens: 100_000 },
  'o3-mini': { input: 1.1, cached_input: 0.55, output: 4.4, max_output_tokens: 100_000 },
  'o4-mini': { input: 1.1, cached_input: 0.275, output: 4.4, max_output_tokens: 100_000 },
  'text-embedding-3-small': { input: 0.02, output: 0, max_output_tokens: 1 },
  'text-embedding-3-large': { input: 0.13, output: 0, max_output_tokens: 1 },
  'claude-3-5-haiku': { input: 0.8, cached_input: 0.08, output: 4, max_output_tokens: 8_192 },
  'claude-haiku-4-5': { input: 1, cached_input: 0.1, output: 5, max_output_tokens: 64_000 },
  'claude-3-5-sonnet': { input: 3, cached_input: 0.3, output: 15, max_output_tokens: 8_192 },
  'claude-3-7-sonnet': { input: 3, cached_input: 0.3, output: 15, max_output_tokens: 64_000 },
  'claude-sonnet-4': { input: 3, cached_input: 0.3, output: 15, max_output_tokens: 64_000 },
  'claude-opus-4': { input: 15, cached_input: 1.5, output: 75, max_output_tokens: 32_000 },
};

export interface Price {
  input: number;
  /** Input read from the provider's prompt cache. */
  cachedInput: number;
  /** Input written to the provider's prompt cache (Anthropic's cache_creation_input_tokens). */
  cacheWrite: number;
  output: number;
  perRequest: number;
  maxOutputTokens: number;
  /** What a batch line pays of this price (1 - batch_discount). */
  batchFactor: number;
  /** False when no price is known: the cost is then 0 and counted as unpriced. */
  known: boolean;
}

export interface PriceBook {
  priceOf(deployment: Deployment): Price;
}

const UNKNOWN: Price = { input: 0, cachedInput: 0, cacheWrite: 0, output: 0, perRequest: 0, maxOutputTokens: 16_384, batchFactor: 1, known: false };

/**
 * Cache rates a price leaves unset, as the providers charge them: Anthropic
 * reads at 0.1x input and writes (5-minute cache) at 1.25x; OpenAI reads
 * cached input at 0.5x and has no write charge.
 */
const CACHE_DEFAULTS = { anthropic: { read: 0.1, write: 1.25 }, other: { read: 0.5, write: 1 } } as const;

type PriceRow = Omit<Price, 'cachedInput' | 'cacheWrite' | 'batchFactor'> & { cacheRead?: number; cacheWrite?: number; batchFactor?: number };

function withCacheRates(row: PriceRow, deployment: Deployment): Price {
  const d = deployment.provider.type === 'anthropic' ? CACHE_DEFAULTS.anthropic : CACHE_DEFAULTS.other;
  return {
    input: row.input,
    cachedInput: row.cacheRead ?? row.input * d.read,
    cacheWrite: row.cacheWrite ?? row.input * d.write,
    output: row.output,
    perRequest: row.perRequest,
    maxOutputTokens: row.maxOutputTokens,
    batchFactor: row.batchFactor ?? 1,
    known: row.known,
  };
}

export function createPriceBook(configured: Record<string, PriceConfig>): PriceBook {
  const table = new Map<string, PriceRow>();
  for (const [name, p] of Object.entries(DEFAULT_PRICES)) {
    table.set(name, { input: p.input, cacheRead: p.cached_input, output: p.output, perRequest: 0, maxOutputTokens: p.max_output_tokens ?? 16_384, known: true });
  }
  for (const [name, p] of Object.entries(configured)) {
    const cacheRead = p.cache_read ?? p.cached_input;
    table.set(name, { input: p.input, cacheRead, cacheWrite: p.cache_write, output: p.output, perRequest: p.per_request, maxOutputTokens: p.max_output_tokens, batchFactor: 1 - p.batch_discount, known: true });
  }
  // Longest names first, so "gpt-4o-mini-2024-07-18" finds gpt-4o-mini, not gpt-4o.
  const names = [...table.keys()].sort((a, b) => b.length - a.length);
  const cache = new Map<string, Price>();
  return {
    priceOf(deployment) {
      let price = cache.get(deployment.id);
      if (price) return price;
      let row = table.get(deployment.id) ?? table.get(deployment.model);
      if (!row) {
        const prefix = names.find((n) => deployment.model.startsWith(n) && !n.includes('/'));
        row = prefix ? table.get(prefix) : undefined;
      }
      price = row ? withCacheRates(row, deployment) : UNKNOWN;
      cache.set(deployment.id, price);
      return price;
    },
  };
}

/** nano-USD (1e-9 USD) per token = USD per million tokens × 1000. */
const NANO_PER_TOKEN = 1000;

/** Prompt tokens read from and written to the provider's prompt cache (both are inside prompt_tokens). */
export function cacheTokens(usage: Pick<Usage, 'prompt_tokens' | 'prompt_tokens_details'>): { read: number; write: number } {
  const details = usage.prompt_tokens_details;
  const read = Math.min(count(details?.cached_tokens), usage.prompt_tokens);
  const write = Math.min(count(details?.cache_write_tokens), usage.prompt_tokens - read);
  return { read, write };
}

function count(v: unknown): number {
  return typeof v === 'number' && Number.isFinite(v) && v > 0 ? v : 0;
}

export function costNano(price: Price, usage: Pick<Usage, 'prompt_tokens' | 'completion_tokens' | 'prompt_tokens_details'>): number {
  const { read, write } = cacheTokens(usage);
  const uncached = usage.prompt_tokens - read - write;
  return Math.round(
    (uncached * price.input + read * price.cachedInput + write * price.cacheWrite + usage.completion_tokens * price.output) * NANO_PER_TOKEN + price.perRequest * 1e9,
  );
}

/** What a request cost: nano-USD, the same in USD, and whether a price was known. */
export interface RequestCost {
  nano: number;
  usd: number;
  priced: boolean;
}

/**
 * A request to price: the request context is one. It is named by its shape
 * because the price book is compiled with the config, which the context
 * imports: importing the context here would close a cycle.
 */
export interface PricedRequest {
  readonly config: { readonly limits: { readonly prices: PriceBook } };
  readonly usage?: Usage;
  readonly deployment?: Deployment;
  /** A batch line pays the batch price. */
  readonly queued?: { readonly kind: 'batch' | 'response' };
  cost?: RequestCost;
}

/** What the request cost, from the usage the provider reported (a batch line at the batch price). */
export function priceRequest(ctx: PricedRequest): void {
  if (!ctx.usage || !ctx.deployment) return;
  const price = ctx.config.limits.prices.priceOf(ctx.deployment);
  const full = costNano(price, ctx.usage);
  const nano = ctx.queued?.kind === 'batch' && price.batchFactor !== 1 ? Math.round(full * price.batchFactor) : full;
  ctx.cost = { nano, usd: nano / 1e9, priced: price.known };
}

export function nanoToUsd(nano: number): number {
  return nano / 1e9;
}

export function formatUsd(nano: number): string {
  return (nano / 1e9).toFixed(6);
}
