// The one interface every provider implements. Requests and responses are in
// OpenAI's shape; only the adapter behind it knows the provider's wire format.
// Adapters know nothing of keys, lanes, budgets, caches or retries.
import type { ChatChunk, ChatCompletion, ChatRequest, EmbeddingsRequest, EmbeddingsResponse } from '../api/schemas.js';
import type { Cancel } from './cancel.js';
import type { BreakerConfig, ProviderConfig, RateLimitCooldownConfig, ResponseLimitsConfig, RetryConfig, TimeoutsConfig } from '../config/schema.js';

export interface Deployment {
  /** `<provider>/<model>`, unique within a config. */
  id: string;
  providerName: string;
  provider: ProviderConfig;
  /** The upstream model name (the deployment id for Azure-style providers). */
  model: string;
  /** Request defaults, applied where the app left a parameter unset. */
  params: Record<string, unknown>;
  weight: number;
  /** The provider's settings with the deployment's overrides applied. */
  timeouts: TimeoutsConfig;
  retry: RetryConfig;
  breaker: BreakerConfig;
  rateLimitCooldown: RateLimitCooldownConfig;
  responseLimits: ResponseLimitsConfig;
}

/**
 * A request in an upstream API's own shape, validated and re-serialised by
 * its ingress: the adapter of that provider type sends it instead of
 * translating the chat request, so features chat cannot carry survive. Any
 * other adapter ignores it and serves the chat request.
 */
export interface NativeRequest {
  /** The provider type that speaks it. */
  readonly provider: 'anthropic';
  readonly body: Record<string, unknown>;
  /** Headers of that API the app sent (anthropic-version, anthropic-beta). */
  readonly headers: Record<string, string>;
  /** Something only that API can serve: any other upstream refuses the request with this (a 400). */
  readonly unsupported?: { param: string; message: string };
}

/** A non-streamed chat answer. */
export interface ChatAnswer {
  completion: ChatCompletion;
  /**
   * The upstream's JSON text of exactly this completion, when the adapter
   * neither built nor changed it (nothing added, normalised or dropped, no
   * member named twice): the reply sends these bytes unless a reply stage
   * changes the completion (pipeline/context.ts, `Reply`).
   */
  text?: string;
}

export interface ProviderAdapter {
  chat(request: ChatRequest, deployment: Deployment, cancel: Cancel, native?: NativeRequest): Promise<ChatAnswer>;
  /**
   * Chunks in OpenAI's shape. The last chunk always carries `usage` (counted
   * with tiktoken when the upstream reports none), with empty `choices`.
   */
  chatStream(request: ChatRequest, deployment: Deployment, cancel: Cancel, native?: NativeRequest): AsyncIterable<ChatChunk>;
  embed(request: EmbeddingsRequest, deployment: Deployment, cancel: Cancel): Promise<EmbeddingsResponse>;
  /**
   * Upstreams that speak the Responses API (openai providers with
   * `responses_api: true`): the Responses request goes out as it is, the
   * answer comes back in chat's shape for the reply stages. `chat` is the same
   * request as chat, for counting tokens when the upstream reports none.
   */
  responses?(request: NativeResponsesRequest, deployment: Deployment, cancel: Cancel): Promise<ChatCompletion>;
  responsesStream?(request: NativeResponsesRequest, deployment: Deployment, cancel: Cancel): AsyncIterable<ChatChunk>;
  /** The upstream's own count of a native request's prompt tokens, where its API has one (Anthropic's count_tokens). */
  countTokens?(native: NativeRequest, deployment: Deployment, cancel: Cancel): Promise<number>;
  close?(): Promise<void>;
}

export interface NativeResponsesRequest {
  /** The Responses request body, validated; the adapter sets the model and stream. */
  body: Record<string, unknown>;
  chat: ChatRequest;
}

/** Fills in the deployment's default params and its upstream model name. */
export function applyDeployment<T extends { model: string }>(request: T, deployment: Deployment): T {
  const out: Record<string, unknown> = { ...deployment.params, ...request };
  for (const [k, v] of Object.entries(deployment.params)) if (out[k] === null || out[k] === undefined) out[k] = v;
  out.model = deployment.model;
  return out as T;
}
