// The after stages: everything that happens once a request is over, off the
// client's path. pipeline/index.ts lists them in the order they run; the
// runner (run.ts, finishRequest) runs them once the response is over.
import { buildAuditRecord } from '../audit/record.js';
import { cacheTokens } from '../budget/pricing.js';
import { priceRequest, settleBudget } from '../budget/stage.js';
import { writeAccessLine } from '../telemetry/logger.js';
import { statusClass } from '../telemetry/metrics.js';
import type { RequestContext } from './context.js';
import type { AfterStage, RequestEnd } from './stage.js';

/** The request's total time, for every record after it. */
export const timeRequest: AfterStage = {
  name: 'timeRequest',
  run(ctx) {
    ctx.timings.totalMs = Math.round((performance.now() - ctx.startedAt) * 1000) / 1000;
  },
};

/** A stream (or a failed request) is priced from the usage it ended with. */
export const priceAnswer: AfterStage = {
  name: 'priceAnswer',
  run(ctx) {
    if (!ctx.cost) priceRequest(ctx);
  },
};

/** Releases the reservation and records the spend. Off the client's path, but never lost silently. */
export const settleSpend: AfterStage = {
  name: 'settleBudget',
  run(ctx) {
    if (!ctx.budget) return;
    return settleBudget(ctx).catch((err: unknown) => ctx.services.logger.error({ err: String(err), requestId: ctx.id }, 'budget settlement failed; the reservation expires instead'));
  },
};

/** What the request cost, by key. */
export const recordSpend: AfterStage = {
  name: 'recordSpend',
  run(ctx) {
    const cost = ctx.cost;
    if (cost && ctx.key && cost.nano > 0) {
      ctx.services.metrics.spend.labels(ctx.key.team, ctx.key.app, ctx.key.id, ctx.model?.name ?? 'unknown', ctx.deployment?.providerName ?? 'none', ctx.lane ?? 'none').inc(cost.usd);
    }
  },
};

function outcomeClass(ctx: RequestContext, end: RequestEnd): string {
  return end.clientDisconnected && (!ctx.error || ctx.error.code === 'client_disconnected') ? 'aborted' : statusClass(ctx.status ?? 0);
}

/** Request, upstream and token metrics. */
export const recordMetrics: AfterStage = {
  name: 'recordMetrics',
  run(ctx, end) {
    const metrics = ctx.services.metrics;
    const cls = outcomeClass(ctx, end);
    const model = ctx.model?.name ?? 'unknown';
    const provider = ctx.deployment?.providerName ?? 'none';
    if (ctx.cost && ctx.key && !ctx.cost.priced) metrics.unpriced.labels(ctx.deployment!.id).inc();
    // The route is only a label once it resolved to a configured model: before that it is whatever the app sent.
    const route = ctx.model ? (ctx.route?.name ?? model) : 'unknown';
    const lane = ctx.lane ?? 'none';
    metrics.requests.labels(ctx.ingress, route, model, provider, lane, cls).inc();
    metrics.duration.labels(ctx.ingress, route, model, provider, lane, cls).observe(ctx.timings.totalMs! / 1000);
    metrics.clientRequests.labels(ctx.ingress, ctx.client).inc();
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
    // A cache hit's tokens were not consumed upstream; lanegate_cache_saved_tokens_total counts them.
    if (ctx.usage && ctx.key && ctx.cache?.status !== 'hit') {
      metrics.tokens.labels('input', model, ctx.key.team, ctx.key.app, lane).inc(ctx.usage.prompt_tokens);
      if (ctx.usage.completion_tokens > 0) metrics.tokens.labels('output', model, ctx.key.team, ctx.key.app, lane).inc(ctx.usage.completion_tokens);
      const cached = cacheTokens(ctx.usage);
      if (cached.read > 0) metrics.tokens.labels('cache_read', model, ctx.key.team, ctx.key.app, lane).inc(cached.read);
      if (cached.write > 0) metrics.tokens.labels('cache_write', model, ctx.key.team, ctx.key.app, lane).inc(cached.write);
    }
  },
};

/** The route's (or model's) SLO, when it has one. */
export const recordSlo: AfterStage = {
  name: 'recordSlo',
  run(ctx, end) {
    if (!end.slo) return;
    const status = ctx.status ?? 0;
    const routed = ctx.route && ctx.config.routes.get(ctx.route.name);
    const slo = routed ? routed.slo : ctx.model?.slo;
    // Requests the client got wrong (4xx other than rate limits) say nothing about the service.
    const clientFault = status >= 400 && status < 500 && status !== 429;
    if (slo && ctx.route && !end.clientDisconnected && !clientFault) end.slo.record(ctx.route.name, slo, status >= 200 && status < 300 && !ctx.error, ctx.timings.totalMs!);
  },
};

/** The audit record; with the trail off none is even built. */
export const writeAudit: AfterStage = {
  name: 'writeAudit',
  run(ctx, end) {
    if (end.audit?.enabled) end.audit.write(buildAuditRecord(ctx, end.clientDisconnected));
  },
};

export const endTrace: AfterStage = {
  name: 'endTrace',
  run(ctx, end) {
    ctx.trace?.end(ctx, end.clientDisconnected);
  },
};

export const writeAccessLog: AfterStage = {
  name: 'writeAccessLog',
  run(ctx, end) {
    if (!ctx.config.logging.access_log) return;
    // Fields left undefined are left out of the line.
    writeAccessLine(ctx.services.logger, {
      requestId: ctx.id,
      endpoint: ctx.endpoint,
      key: ctx.key?.id,
      model: ctx.requestedModel,
      lane: ctx.lane,
      rule: ctx.route?.rule,
      deployment: ctx.deployment?.id,
      stream: ctx.stream,
      status: ctx.status ?? 0,
      code: ctx.error?.code,
      ms: ctx.timings.totalMs,
      clientDisconnected: end.clientDisconnected || undefined,
    });
  },
};
