// OpenTelemetry traces: one server span per request, child spans for the
// policy, cache, budget and guard stages and one client span per upstream
// attempt, with the OpenTelemetry GenAI semantic conventions (gen_ai.*) as of
// semantic conventions v1.37 (gen_ai.provider.name, not the older
// gen_ai.system; see the README). A `traceparent`
// from the app is continued; each attempt's own context goes upstream in
// `traceparent`, so the provider's spans (a self-hosted model's, say) join
// the trace. Spans are exported over OTLP/HTTP.
//
// Off unless telemetry.otlp_endpoint is set, and then free: nothing here is
// imported until createTracing() finds an endpoint (the SDK is loaded with
// import()), no context object carries a trace, and the adapters' header hook
// is a no-op.
import type { Attributes, Context, Span, Tracer, TextMapPropagator } from '@opentelemetry/api';
import type { AttemptSpan, RequestContext, RequestTrace, TracedStage } from '../pipeline/context.js';
import type { Deployment } from '../providers/types.js';
import { signalUrl, type TelemetryConfig } from './config.js';
import type { Logger } from './logger.js';
import { withTraceHeaders } from './propagation.js';

export interface Tracing {
  startRequest(ctx: RequestContext): RequestTrace;
  /** An MCP tool call's `execute_tool {tool}` span (GenAI conventions), continuing the agent's traceparent. */
  startToolCall(call: ToolCallTraceInfo): ToolCallSpan;
  /** Exports what is buffered. */
  flush(): Promise<void>;
  shutdown(): Promise<void>;
}

export interface ToolCallTraceInfo {
  /** The namespaced name the agent called. */
  tool: string;
  /** The JSON-RPC id of the call: MCP's tool call id. */
  callId: string;
  server: string;
  lane: string;
  requestId: string;
  headers: Record<string, string | string[] | undefined>;
}

export interface ToolCallSpan {
  /** `error`: the error code or outcome when the call did not succeed. */
  end(o: { outcome: string; error?: string }): void;
}

/** How often spans are sent. */
const EXPORT_INTERVAL_MS = 1000;

/** gen_ai.provider.name values of the OpenTelemetry GenAI conventions, by provider type. */
const GEN_AI_PROVIDER: Record<string, string> = { openai: 'openai', anthropic: 'anthropic', mock: 'lanegate.mock' };

/** server.address and server.port of a deployment's upstream (none for the in-process mock). */
function serverAttributes(provider: Deployment['provider']): Attributes {
  if (!('base_url' in provider)) return {};
  const url = new URL(provider.base_url);
  return { 'server.address': url.hostname.replace(/^\[(.*)\]$/, '$1'), 'server.port': url.port ? Number(url.port) : url.protocol === 'https:' ? 443 : 80 };
}

export async function createTracing(config: TelemetryConfig, logger: Logger): Promise<Tracing | undefined> {
  if (!config.otlp_endpoint) return undefined;
  const api = await import('@opentelemetry/api');
  const [{ AlwaysOnSampler, BasicTracerProvider, BatchSpanProcessor, ParentBasedSampler, TraceIdRatioBasedSampler }, { resourceFromAttributes }, { W3CTraceContextPropagator }] = await Promise.all([
    import('@opentelemetry/sdk-trace-base'),
    import('@opentelemetry/resources'),
    import('@opentelemetry/core'),
  ]);
  const { trace, SpanKind, SpanStatusCode, ROOT_CONTEXT, defaultTextMapGetter, defaultTextMapSetter } = api;

  const target = signalUrl(config.otlp_endpoint, 'traces');
  const url = target.href;
  // Protobuf (the default) is encoded as spans end, so no span object waits
  // for its batch (span-export.ts); JSON goes through the SDK's batch processor.
  const processor =
    config.protocol === 'http/json'
      ? new BatchSpanProcessor(new (await import('@opentelemetry/exporter-trace-otlp-http')).OTLPTraceExporter({ url, headers: config.headers }), {
          scheduledDelayMillis: EXPORT_INTERVAL_MS,
          maxQueueSize: 16_384,
          maxExportBatchSize: 2048,
        })
      : new (await import('./span-export.js')).EagerSpanProcessor({ url, headers: config.headers, intervalMs: EXPORT_INTERVAL_MS, logger });
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': config.service_name }),
    sampler: new ParentBasedSampler({ root: config.sample_ratio >= 1 ? new AlwaysOnSampler() : new TraceIdRatioBasedSampler(config.sample_ratio) }),
    spanProcessors: [processor],
  });
  const tracer: Tracer = provider.getTracer('lanegate');
  const propagator: TextMapPropagator = new W3CTraceContextPropagator();
  logger.info({ endpoint: target.origin + target.pathname, protocol: config.protocol, sampleRatio: config.sample_ratio }, 'OpenTelemetry tracing on: spans are exported over OTLP/HTTP');

  const now = () => performance.timeOrigin + performance.now();
  // What never changes for a deployment, built once. Every attribute costs
  // its share of encoding each span: spans carry what a trace view needs,
  // and the audit record (trace_id links them) carries the rest.
  const deploymentAttributes = new WeakMap<Deployment, Record<string, Attributes>>();
  const attributesOf = (d: Deployment, operation: string): Attributes => {
    let byOperation = deploymentAttributes.get(d);
    if (!byOperation) deploymentAttributes.set(d, (byOperation = {}));
    return (byOperation[operation] ??= {
      'gen_ai.operation.name': operation,
      'gen_ai.provider.name': GEN_AI_PROVIDER[d.provider.type] ?? d.provider.type,
      'gen_ai.request.model': d.model,
      ...serverAttributes(d.provider),
      'lanegate.deployment': d.id,
    });
  };
  const fail = (span: Span, code: string) => {
    span.setStatus({ code: SpanStatusCode.ERROR, message: code });
    span.setAttribute('error.type', code);
  };
  const codeOf = (err: unknown) => (err as { code?: unknown } | null)?.code;

  /**
   * A trace not sampled records nothing: no child spans, and upstream gets
   * the request's own context (flagged not sampled) so the decision holds
   * downstream too.
   */
  function unsampled(root: Span, rootContext: Context): RequestTrace {
    const inject = (headers: Record<string, string>) => propagator.inject(rootContext, headers, defaultTextMapSetter);
    const attempt: AttemptSpan = { run: (fn) => withTraceHeaders(inject, fn), end() {} };
    return {
      traceId: root.spanContext().traceId,
      spanId: root.spanContext().spanId,
      stage: (stage, c) => stage.run(c),
      attempt: () => attempt,
      end() {},
    };
  }

  function startRequest(ctx: RequestContext): RequestTrace {
    const parent: Context = ctx.headers.traceparent ? propagator.extract(ROOT_CONTEXT, ctx.headers, defaultTextMapGetter) : ROOT_CONTEXT;
    const operation = ctx.endpoint === 'embeddings' ? 'embeddings' : 'chat';
    const root: Span = tracer.startSpan(
      operation,
      {
        kind: SpanKind.SERVER,
        startTime: performance.timeOrigin + ctx.startedAt,
        attributes: { 'gen_ai.operation.name': operation, 'lanegate.request_id': ctx.id },
      },
      parent,
    );
    const rootContext = trace.setSpan(ROOT_CONTEXT, root);
    if (!root.isRecording()) return unsampled(root, rootContext);
    // The answering attempt's span stays open until the request ends, to carry the answer's usage.
    let winners: Array<{ span: Span; endTime: number }> | undefined;

    const endStage = (span: Span, name: string, c: RequestContext, err?: unknown) => {
      if (name === 'lanegate.policy' && c.policy) {
        if (c.policy.findings.length > 0) span.setAttribute('lanegate.policy.findings', c.policy.findings.map((f) => `${f.detector}:${f.action}`));
      } else if (name === 'lanegate.cache' && c.cache) span.setAttribute('lanegate.cache.status', c.cache.status);
      if (err !== undefined) fail(span, String(codeOf(err) ?? 'internal_error'));
      span.end();
    };

    return {
      traceId: root.spanContext().traceId,
      spanId: root.spanContext().spanId,
      stage(stage, c) {
        // The descriptor names the span (pipeline/index.ts): the policy, the budget and the cache lookups; cheap synchronous steps have none.
        const name = stage.span;
        if (!name) return stage.run(c);
        const span = tracer.startSpan(name, { kind: SpanKind.INTERNAL }, rootContext);
        let result: ReturnType<TracedStage['run']>;
        try {
          result = stage.run(c);
        } catch (err) {
          endStage(span, name, c, err);
          throw err;
        }
        if (!(result instanceof Promise)) {
          endStage(span, name, c);
          return result;
        }
        return result.then(
          (value) => {
            endStage(span, name, c);
            return value;
          },
          (err: unknown) => {
            endStage(span, name, c, err);
            throw err;
          },
        );
      },
      attempt(deployment, info) {
        const span = tracer.startSpan(`${operation} ${deployment.model}`, { kind: SpanKind.CLIENT, attributes: attributesOf(deployment, operation) }, rootContext);
        span.setAttributes(requestParameters(ctx));
        if (info.retry > 0) span.setAttribute('lanegate.attempt.retry', info.retry);
        if (info.fallback) span.setAttribute('lanegate.attempt.fallback', true);
        if (info.degraded) span.setAttribute('lanegate.attempt.degraded', true);
        const spanContext = trace.setSpan(ROOT_CONTEXT, span);
        const inject = (headers: Record<string, string>) => propagator.inject(spanContext, headers, defaultTextMapSetter);
        return {
          run: (fn) => withTraceHeaders(inject, fn),
          end(a) {
            if (a.code) {
              if (a.status !== undefined) span.setAttribute('http.response.status_code', a.status);
              if (a.errorClass) span.setAttribute('lanegate.attempt.error_class', a.errorClass);
              fail(span, a.code);
              span.end();
            } else (winners ??= []).push({ span, endTime: now() });
          },
        };
      },
      end(c, clientDisconnected) {
        const response = responseOf(c);
        const a: Attributes = {};
        if (c.usage) {
          a['gen_ai.usage.input_tokens'] = c.usage.prompt_tokens;
          a['gen_ai.usage.output_tokens'] = c.usage.completion_tokens;
        }
        if (response.model) a['gen_ai.response.model'] = response.model;
        if (response.id) a['gen_ai.response.id'] = response.id;
        if (response.finishReasons.length > 0) a['gen_ai.response.finish_reasons'] = response.finishReasons;
        for (const w of winners ?? []) {
          w.span.setAttributes(a);
          w.span.end(w.endTime);
        }
        // Named after what the app asked for, refused or not, when that is a
        // configured model or route: an unknown name is the app's free text,
        // which would make span names (and the request model) unbounded.
        const asked = c.requestedModel && (c.model || c.config.models.has(c.requestedModel) || c.config.routes.has(c.requestedModel)) ? c.requestedModel : undefined;
        if (asked) a['gen_ai.request.model'] = asked;
        Object.assign(a, requestParameters(c));
        const d = c.deployment;
        if (d) a['gen_ai.provider.name'] = GEN_AI_PROVIDER[d.provider.type] ?? d.provider.type;
        a['http.response.status_code'] = c.status ?? 0;
        if (c.lane) a['lanegate.lane'] = c.lane;
        if (c.route?.rule) a['lanegate.route.rule'] = c.route.rule;
        if (c.degraded) a['lanegate.degraded'] = true;
        if (c.stream) a['lanegate.stream'] = true;
        if (clientDisconnected) a['lanegate.client_disconnected'] = true;
        root.setAttributes(a);
        root.updateName(`${operation} ${asked ?? c.model?.name ?? 'unknown'}`);
        if (c.error) {
          root.setAttribute('error.type', c.error.code);
          if ((c.status ?? 500) >= 500) root.setStatus({ code: SpanStatusCode.ERROR, message: c.error.code });
        }
        root.end(performance.timeOrigin + c.startedAt + (c.timings.totalMs ?? performance.now() - c.startedAt));
      },
    };
  }

  function startToolCall(call: ToolCallTraceInfo): ToolCallSpan {
    const parent: Context = call.headers.traceparent ? propagator.extract(ROOT_CONTEXT, call.headers, defaultTextMapGetter) : ROOT_CONTEXT;
    const span = tracer.startSpan(
      `execute_tool ${call.tool}`,
      {
        kind: SpanKind.INTERNAL,
        attributes: {
          'gen_ai.operation.name': 'execute_tool',
          'gen_ai.tool.name': call.tool,
          'gen_ai.tool.call.id': call.callId,
          'gen_ai.tool.type': 'extension',
          'lanegate.mcp.server': call.server,
          'lanegate.lane': call.lane,
          'lanegate.request_id': call.requestId,
        },
      },
      parent,
    );
    return {
      end(o) {
        span.setAttribute('lanegate.mcp.outcome', o.outcome);
        if (o.error) fail(span, o.error);
        span.end();
      },
    };
  }

  return {
    startRequest,
    startToolCall,
    flush: () => provider.forceFlush(),
    async shutdown() {
      await provider.shutdown().catch((err: unknown) => logger.warn({ err: String(err) }, 'exporting the last spans failed'));
    },
  };
}

/** gen_ai.request.* of the request as it went upstream (after any template). */
function requestParameters(ctx: RequestContext): Attributes {
  const chat = ctx.chat;
  if (!chat) return {};
  const a: Attributes = {};
  const maxTokens = chat.max_completion_tokens ?? chat.max_tokens;
  if (typeof maxTokens === 'number') a['gen_ai.request.max_tokens'] = maxTokens;
  if (typeof chat.temperature === 'number') a['gen_ai.request.temperature'] = chat.temperature;
  return a;
}

/** The answer's model, id and finish reasons (one per choice), from the JSON reply or the assembled stream. */
function responseOf(ctx: RequestContext): { model: string | undefined; id: string | undefined; finishReasons: string[] } {
  const reply = ctx.reply;
  const body = (reply?.kind === 'json' ? reply.body : ctx.assembled?.result()) as { model?: unknown; id?: unknown; choices?: unknown } | undefined;
  const model = typeof body?.model === 'string' ? body.model : reply?.kind === 'json' ? undefined : ctx.deployment?.model;
  // An error body is no answer: no id, no finish reasons.
  if (ctx.error || !body) return { model, id: undefined, finishReasons: [] };
  const choices = Array.isArray(body.choices) ? (body.choices as Array<{ finish_reason?: unknown }>) : [];
  const finishReasons = choices.map((c) => c.finish_reason).filter((r): r is string => typeof r === 'string');
  return { model, id: typeof body.id === 'string' ? body.id : undefined, finishReasons };
}
