// Everything that happens once a request is over: metrics, the audit record
// and the access log line. It runs after the response has been sent.
import { buildAuditRecord } from '../audit/record.js';
import { priceRequest, settleBudget } from '../budget/stage.js';
import type { AuditSink } from '../audit/transport/writer.js';
import type { SloTracker } from '../routing/slo.js';
import { type Logger, writeAccessLine } from '../telemetry/logger.js';
import { type Metrics, statusClass } from '../telemetry/metrics.js';
import type { RequestContext } from './context.js';

export interface FinishDeps {
  metrics: Metrics;
  audit: AuditSink;
  logger: Logger;
  slo: SloTracker;
}

export function finishRequest(deps: FinishDeps, ctx: RequestContext, clientDisconnected: boolean): void {
  const { metrics, audit, logger } = deps;
  const totalMs = performance.now() - ctx.startedAt;
  ctx.timings.totalMs = Math.round(totalMs * 1000) / 1000;
  const status = ctx.status ?? 0;
  const cls = clientDisconnected && (!ctx.error || ctx.error.code === 'client_disconnected') ? 'aborted' : statusClass(status);
  const model = ctx.model?.name ?? 'unknown';
  const provider = ctx.deployment?.providerName ?? 'none';
  if (!ctx.cost) priceRequest(ctx);
  if (ctx.cost && ctx.key) {
    if (ctx.cost.nano > 0) metrics.spend.labels(ctx.key.team, ctx.key.app, ctx.key.id, model, provider, ctx.lane ?? 'none').inc(ctx.cost.usd);
    if (!ctx.cost.priced) metrics.unpriced.labels(ctx.deployment!.id).inc();
  }
  if (ctx.budget) {
    // Settlement is off the client's path, but never lost silently.
    settleBudget(ctx).catch((err: unknown) => logger.error({ err: String(err), requestId: ctx.id }, 'budget settlement failed; the reservation expires instead'));
  }

  // The route is only a label once it resolved to a configured model: before that it is whatever the app sent.
  const route = ctx.model ? (ctx.route?.name ?? model) : 'unknown';
  const lane = ctx.lane ?? 'none';
  metrics.requests.labels(ctx.endpoint, route, model, provider, lane, cls).inc();
  metrics.duration.labels(ctx.endpoint, route, model, provider, lane, cls).observe(totalMs / 1000);
  if (ctx.stream && ctx.timings.firstByteMs !== undefined) {
    metrics.timeToFirstToken.labels(route, model, provider, lane).observe(ctx.timings.firstByteMs / 1000);
  }
  for (const a of ctx.attempts) {
    metrics.upstreamAttempts.labels(a.provider, a.code ?? 'ok').inc();
    metrics.upstreamDuration.labels(a.provider, a.deployment, a.code ?? 'ok').observe(a.latencyMs / 1000);
    if (a.retry > 0) metrics.upstreamRetries.labels(a.provider, a.deployment).inc();
    if (a.fallback) metrics.fallbacks.labels(model, a.provider).inc();
  }
  if (ctx.degraded) metrics.degraded.labels(model).inc();
  const routed = ctx.route && ctx.config.routes.get(ctx.route.name);
  const slo = routed ? routed.slo : ctx.model?.slo;
  // Requests the client got wrong (4xx other than rate limits) say nothing about the service.
  const clientFault = status >= 400 && status < 500 && status !== 429;
  if (slo && ctx.route && !clientDisconnected && !clientFault) deps.slo.record(ctx.route.name, slo, status >= 200 && status < 300 && !ctx.error, totalMs);
  // A cache hit's tokens were not consumed upstream; lanegate_cache_saved_tokens_total counts them.
  if (ctx.usage && ctx.key && ctx.cache?.status !== 'hit') {
    metrics.tokens.labels('input', model, ctx.key.team, ctx.key.app, lane).inc(ctx.usage.prompt_tokens);
    if (ctx.usage.completion_tokens > 0) metrics.tokens.labels('output', model, ctx.key.team, ctx.key.app, lane).inc(ctx.usage.completion_tokens);
  }

  // With the trail off no record is even built.
  if (audit.enabled) audit.write(buildAuditRecord(ctx, clientDisconnected));
  ctx.trace?.end(ctx, clientDisconnected);

  if (ctx.config.logging.access_log) {
    // Fields left undefined are left out of the line.
    writeAccessLine(logger, {
      requestId: ctx.id,
      endpoint: ctx.endpoint,
      key: ctx.key?.id,
      model: ctx.requestedModel,
      lane: ctx.lane,
      rule: ctx.route?.rule,
      deployment: ctx.deployment?.id,
      stream: ctx.stream,
      status,
      code: ctx.error?.code,
      ms: ctx.timings.totalMs,
      clientDisconnected: clientDisconnected || undefined,
    });
  }
}
