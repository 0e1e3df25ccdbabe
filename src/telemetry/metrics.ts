// Prometheus metrics on a registry of the gateway's own (not prom-client's
// global one), so several gateways can live in one process. Labels come from
// config-defined names and fixed sets only: no request ids, no user input.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { FastCounter, FastGauge, FastHistogram } from './fast-metrics.js';

export interface Metrics {
  registry: Registry;
  requests: Counter<'endpoint' | 'route' | 'model' | 'provider' | 'lane' | 'status_class'>;
  /** Requests by the API called and the client's user-agent family (what coding agents and SDKs send). */
  clientRequests: Counter<'endpoint' | 'client'>;
  duration: Histogram<'endpoint' | 'route' | 'model' | 'provider' | 'lane' | 'status_class'>;
  timeToFirstToken: Histogram<'route' | 'model' | 'provider' | 'lane'>;
  inflight: Gauge<'endpoint'>;
  upstreamAttempts: Counter<'provider' | 'outcome'>;
  upstreamDuration: Histogram<'provider' | 'deployment' | 'outcome'>;
  upstreamRetries: Counter<'provider' | 'deployment'>;
  fallbacks: Counter<'model' | 'provider'>;
  tokens: Counter<'direction' | 'model' | 'team' | 'app' | 'lane'>;
  /** Prompt-cache markers (Anthropic cache_control) a translation to another provider's API had to drop. */
  cacheMarkersDropped: Counter<'provider'>;
  configReloads: Counter<'result'>;
  breakerState: Gauge<'deployment'>;
  cooldowns: Counter<'deployment'>;
  cooldownUntil: Gauge<'deployment'>;
  sloRequests: Counter<'route' | 'result'>;
  sloObjective: Gauge<'route'>;
  routeDuration: Histogram<'route'>;
  degraded: Counter<'model'>;
  policyActions: Counter<'lane' | 'detector' | 'action'>;
  spend: Counter<'team' | 'app' | 'key' | 'model' | 'provider' | 'lane'>;
  unpriced: Counter<'deployment'>;
  limitRefusals: Counter<'kind' | 'name'>;
  budgetStoreErrors: Counter<'mode'>;
  /** 1 while budgeted requests are refused because the budget store lost its counters. */
  budgetCountersLost: Gauge;
  budgetUnavailable: Counter;
  toolCalls: Counter<'lane' | 'outcome' | 'reason'>;
  /** Requests rendered from a prompt template, by template, version and how the version was chosen. */
  promptRequests: Counter<'prompt' | 'version' | 'variant'>;
  redisUp: Gauge<'connection'>;
  redisConnectionErrors: Counter<'connection'>;
  /** MCP tool calls through /mcp: outcome ok, tool_error, refused, held or an upstream error kind. */
  mcpToolCalls: Counter<'server' | 'tool' | 'lane' | 'outcome'>;
  /** Each request to an upstream MCP server (tool calls, lists, reads). */
  mcpUpstreamDuration: Histogram<'server' | 'operation' | 'outcome'>;
  /** MCP tool calls held for a human's approval (draft-first). */
  mcpHeldCalls: Counter<'server' | 'tool' | 'lane'>;
  /** Restarts of local (stdio) MCP servers after they exited. */
  mcpRestarts: Counter<'server'>;
}

const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];

export function createMetrics(options: { defaultMetrics?: boolean } = {}): Metrics {
  const registry = new Registry();
  // No prefix: the standard names (process_resident_memory_bytes, nodejs_*)
  // are what the common Node.js dashboards and alerts query.
  if (options.defaultMetrics !== false) collectDefaultMetrics({ register: registry });
  return {
    registry,
    clientRequests: new FastCounter({
      name: 'lanegate_client_requests_total',
      help: 'Requests handled, by the API called (chat, embeddings, responses, messages) and the client user-agent family (claude-cli, openai-agents, openai-node, ...).',
      labelNames: ['endpoint', 'client'],
      registers: [registry],
    }),
    requests: new FastCounter({
      name: 'lanegate_requests_total',
      help: 'Requests handled, by endpoint, route (or model) asked for, model, provider that answered, final lane and HTTP status class.',
      labelNames: ['endpoint', 'route', 'model', 'provider', 'lane', 'status_class'],
      registers: [registry],
    }),
    duration: new FastHistogram({
      name: 'lanegate_request_duration_seconds',
      help: 'Time from request received to response finished.',
      labelNames: ['endpoint', 'route', 'model', 'provider', 'lane', 'status_class'],
      buckets: LATENCY_BUCKETS,
      registers: [registry],
    }),
    timeToFirstToken: new FastHistogram({
      name: 'lanegate_time_to_first_token_seconds',
      help: 'Time from request received to the first streamed byte sent to the client.',
      labelNames: ['route', 'model', 'provider', 'lane'],
      buckets: LATENCY_BUCKETS,
      registers: [registry],
    }),
    inflight: new FastGauge({ name: 'lanegate_requests_in_flight', help: 'Requests being handled now.', labelNames: ['endpoint'], registers: [registry] }),
    upstreamAttempts: new FastCounter({
      name: 'lanegate_upstream_attempts_total',
      help: 'Calls to providers, by outcome (ok or an error code).',
      labelNames: ['provider', 'outcome'],
      registers: [registry],
    }),
    upstreamDuration: new FastHistogram({
      name: 'lanegate_upstream_attempt_duration_seconds',
      help: 'Time of each call to a provider (streams: until the first content chunk), by outcome (ok or an error code).',
      labelNames: ['provider', 'deployment', 'outcome'],
      buckets: LATENCY_BUCKETS,
      registers: [registry],
    }),
    upstreamRetries: new FastCounter({
      name: 'lanegate_upstream_retries_total',
      help: 'Calls that retried a deployment after it failed.',
      labelNames: ['provider', 'deployment'],
      registers: [registry],
    }),
    fallbacks: new FastCounter({
      name: 'lanegate_fallbacks_total',
      help: 'Calls to a fallback candidate after the ones before it failed, by the model asked for and the provider fallen back to.',
      labelNames: ['model', 'provider'],
      registers: [registry],
    }),
    tokens: new FastCounter({
      name: 'lanegate_tokens_total',
      help: 'Tokens by direction (input, output; cache_read and cache_write are the part of input read from or written to the provider prompt cache), model, team, app and lane.',
      labelNames: ['direction', 'model', 'team', 'app', 'lane'],
      registers: [registry],
    }),
    cacheMarkersDropped: new FastCounter({
      name: 'lanegate_prompt_cache_markers_dropped_total',
      help: 'Prompt-cache markers (Anthropic cache_control) dropped because the request went to a provider whose API cannot carry them, by provider.',
      labelNames: ['provider'],
      registers: [registry],
    }),
    configReloads: new FastCounter({ name: 'lanegate_config_reloads_total', help: 'Config reloads by result.', labelNames: ['result'], registers: [registry] }),
    breakerState: new FastGauge({
      name: 'lanegate_breaker_state',
      help: 'Circuit breaker per deployment: 0 closed, 1 half-open, 2 open.',
      labelNames: ['deployment'],
      registers: [registry],
    }),
    cooldowns: new FastCounter({
      name: 'lanegate_cooldowns_total',
      help: 'Provider 429s that rested a deployment (started or lengthened its cool-down), seen by this replica.',
      labelNames: ['deployment'],
      registers: [registry],
    }),
    cooldownUntil: new FastGauge({
      name: 'lanegate_cooldown_until_seconds',
      help: 'Unix time until which a deployment rests after a provider 429 (resting while above time()).',
      labelNames: ['deployment'],
      registers: [registry],
    }),
    sloRequests: new FastCounter({
      name: 'lanegate_slo_requests_total',
      help: 'Requests of routes with an SLO, good (succeeded within the objective) or bad.',
      labelNames: ['route', 'result'],
      registers: [registry],
    }),
    sloObjective: new FastGauge({ name: 'lanegate_slo_target_ratio', help: 'The target share of good requests per route.', labelNames: ['route'], registers: [registry] }),
    routeDuration: new FastHistogram({
      name: 'lanegate_route_duration_seconds',
      help: 'Request latency of routes with an SLO.',
      labelNames: ['route'],
      buckets: LATENCY_BUCKETS,
      registers: [registry],
    }),
    degraded: new FastCounter({ name: 'lanegate_degraded_total', help: 'Requests answered in safe mode, by the model asked for.', labelNames: ['model'], registers: [registry] }),
    spend: new FastCounter({
      name: 'lanegate_spend_usd_total',
      help: 'USD spent, priced from provider-reported usage, by team, app, key, model, provider and lane.',
      labelNames: ['team', 'app', 'key', 'model', 'provider', 'lane'],
      registers: [registry],
    }),
    unpriced: new FastCounter({
      name: 'lanegate_unpriced_requests_total',
      help: 'Answered requests whose deployment has no price (cost counted as 0): add it under pricing:.',
      labelNames: ['deployment'],
      registers: [registry],
    }),
    limitRefusals: new FastCounter({
      name: 'lanegate_limit_refusals_total',
      help: 'Requests refused by a budget or a rate limit, by kind and name.',
      labelNames: ['kind', 'name'],
      registers: [registry],
    }),
    budgetStoreErrors: new FastCounter({
      name: 'lanegate_budget_store_errors_total',
      help: 'Budget checks that could not reach the shared store, by the mode applied (fail_closed refused, fail_open served with local accounting).',
      labelNames: ['mode'],
      registers: [registry],
    }),
    budgetCountersLost: new Gauge({
      name: 'lanegate_budget_counters_lost',
      help: '1 while the shared budget store has lost its counters and budgeted requests are refused until `lanegate budgets rebuild` restores every replica\'s spend.',
      registers: [registry],
    }),
    budgetUnavailable: new Counter({
      name: 'lanegate_budget_unavailable_total',
      help: 'Budgeted requests refused with 503 budget_unavailable because the budget store lost its counters.',
      registers: [registry],
    }),
    policyActions: new FastCounter({
      name: 'lanegate_policy_actions_total',
      help: 'Detector matches by lane, detector and action taken (allow, redact, block, escalate).',
      labelNames: ['lane', 'detector', 'action'],
      registers: [registry],
    }),
    toolCalls: new FastCounter({
      name: 'lanegate_tool_calls_total',
      help: 'Tool calls made by models, by lane, outcome (passed, blocked, held for approval) and reason (allowed, require_approval; blocked: denied, uncatalogued, not_offered, recipients).',
      labelNames: ['lane', 'outcome', 'reason'],
      registers: [registry],
    }),
    promptRequests: new FastCounter({
      name: 'lanegate_prompt_requests_total',
      help: 'Requests rendered from a prompt template, by template, version and variant (pinned, canary, exact, shadow).',
      labelNames: ['prompt', 'version', 'variant'],
      registers: [registry],
    }),
    redisUp: new FastGauge({ name: 'lanegate_redis_up', help: '1 while the Redis connection is ready.', labelNames: ['connection'], registers: [registry] }),
    mcpToolCalls: new FastCounter({
      name: 'lanegate_mcp_tool_calls_total',
      help: 'MCP tool calls through /mcp, by server, upstream tool, lane and outcome (ok, tool_error, refused, held, timeout, unavailable, error).',
      labelNames: ['server', 'tool', 'lane', 'outcome'],
      registers: [registry],
    }),
    mcpUpstreamDuration: new FastHistogram({
      name: 'lanegate_mcp_upstream_duration_seconds',
      help: 'Time of each request to an upstream MCP server, by operation (tools/call, tools/list, ...) and outcome.',
      labelNames: ['server', 'operation', 'outcome'],
      buckets: LATENCY_BUCKETS,
      registers: [registry],
    }),
    mcpHeldCalls: new FastCounter({
      name: 'lanegate_mcp_held_calls_total',
      help: 'MCP tool calls held for approval instead of executed.',
      labelNames: ['server', 'tool', 'lane'],
      registers: [registry],
    }),
    mcpRestarts: new FastCounter({ name: 'lanegate_mcp_server_restarts_total', help: 'Restarts of local MCP server processes after they exited.', labelNames: ['server'], registers: [registry] }),
    redisConnectionErrors: new FastCounter({
      name: 'lanegate_redis_connection_errors_total',
      help: 'Redis connection errors (refused, reset, timed out).',
      labelNames: ['connection'],
      registers: [registry],
    }),
  };
}

export function statusClass(status: number): string {
  if (status < 200) return '1xx';
  if (status < 300) return '2xx';
  if (status < 400) return '3xx';
  if (status < 500) return '4xx';
  return '5xx';
}
