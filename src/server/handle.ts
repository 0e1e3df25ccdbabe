// The bridge between Node's request/response and the pipeline: it builds the
// request context, runs the request and reply phases and writes the reply,
// then runs the after phase once both the handler and the response are done.
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { StreamAssembler } from '../api/assemble.js';
import { GatewayError, toGatewayError } from '../errors.js';
import { createContext } from '../pipeline/context.js';
import { finishRequest, runRequest } from '../pipeline/run.js';
import type { Pipeline } from '../pipeline/stage.js';
import type { GatewayState } from './state.js';
import { bodyLimitsOf, checkContentType, parseJsonBody, readRawBody, shouldCloseConnection } from './body.js';
import { refuseAmbiguousHeaders } from './edge-headers.js';
import { lingerBeforeClose } from './lingering-close.js';
import { writeError, writeJson, writeJsonText, writeRendered, writeStream } from './reply.js';

export async function handleApi(
  state: GatewayState,
  incoming: IncomingMessage,
  outgoing: ServerResponse,
  pipeline: Pipeline,
): Promise<void> {
  const endpoint = pipeline.endpoint;
  const config = state.config();
  const server = config.server;
  const ctx = createContext({
    id: randomUUID(),
    endpoint,
    ingress: pipeline.ingress,
    config,
    services: state.services,
    headers: incoming.headers,
    readBody: async () => {
      checkContentType(incoming);
      const raw = await readRawBody(incoming, bodyLimitsOf(server));
      // The audit record keeps the body as sent (full) or its hash.
      if (state.audit.enabled) ctx.rawBody = raw;
      return parseJsonBody(raw, server.max_json_depth);
    },
  });
  if (state.tracing) ctx.trace = state.tracing.startRequest(ctx);

  state.inflight++;
  state.metrics.inflight.labels(endpoint).inc();
  let handlerDone = false;
  let closed = false;
  let disconnected = false;
  const done = () => {
    if (!handlerDone || !closed) return;
    state.inflight--;
    state.metrics.inflight.labels(endpoint).dec();
    void finishRequest(pipeline, ctx, { clientDisconnected: disconnected, audit: state.audit, slo: state.slo });
    state.onIdle();
  };
  outgoing.once('close', () => {
    closed = true;
    if (!outgoing.writableFinished) {
      disconnected = true;
      // The reason is the request's outcome: the upstream call, a stream and the audit record all end with it.
      ctx.abort(new GatewayError('client_disconnected', 'The client closed the connection before the answer was complete.'));
    }
    done();
  });

  // Once per request, before its answer's first byte (an answer that failed before then is promised as the error it became).
  // A stream that reaches a provider is promised as its call starts (ctx.promiseAudit): the intent's
  // write then happens while the provider works, and the first chunk finds it done instead of waiting a turn for it.
  const promise = () => {
    if (ctx.auditIntent !== undefined || !state.audit.enabled) return ctx.auditIntent ?? undefined;
    return (ctx.auditIntent = state.audit.promise(ctx.id, ctx.lane) ?? null);
  };
  if (state.audit.enabled) ctx.promiseAudit = () => void promise();

  try {
    refuseAmbiguousHeaders(incoming);
    // audit.on_full: refuse. Nothing runs that could not be audited.
    if (state.audit.refusing()) throw auditUnavailable();
    const reply = await runRequest(pipeline, ctx);
    // No answer starts before its request is in the intent log: a crash then cannot lose its record unseen.
    await promise();
    if (reply.kind === 'json') {
      ctx.status = reply.status;
      ctx.timings.firstByteMs = elapsed(ctx.startedAt);
      if (!outgoing.destroyed) {
        ctx.responseHeaders['x-request-id'] = ctx.id;
        // A renderer builds its own shape; otherwise an answer no stage changed goes out as the upstream's bytes.
        if (pipeline.render) ctx.responseText = writeJson(outgoing, reply.status, pipeline.render.json(ctx, reply), ctx.responseHeaders);
        else if (reply.text !== undefined) ctx.responseText = writeJsonText(outgoing, reply.status, reply.text, ctx.responseHeaders);
        else ctx.responseText = writeJson(outgoing, reply.status, reply.body, ctx.responseHeaders);
      }
    } else {
      ctx.status = 200;
      // The audit record keeps a stream as the message the app ended up with (the cache tap may have asked for it already).
      if (state.audit.enabled) ctx.assembled ??= new StreamAssembler();
      const firstByte = () => (ctx.timings.firstByteMs = elapsed(ctx.startedAt));
      if (pipeline.render) await writeRendered(outgoing, ctx, reply, pipeline.render, firstByte);
      else await writeStream(outgoing, ctx, reply, firstByte);
    }
  } catch (err) {
    const error = toGatewayError(err);
    ctx.error = error;
    ctx.status = error.status;
    if (error.code === 'internal_error') state.logger.error({ err, requestId: ctx.id }, 'internal error');
    if (!outgoing.headersSent && !outgoing.destroyed) {
      if (error.code !== 'audit_unavailable') await promise();
      // An unread body would otherwise be drained without bound to keep the
      // connection alive; close it instead, once the answer is delivered.
      const close = shouldCloseConnection(err) || !incoming.complete;
      if (close) lingerBeforeClose(incoming, { timeoutMs: server.drain_timeout_ms, maxBytes: server.drain_max_bytes });
      writeError(outgoing, error, ctx.id, ctx.responseHeaders, close, pipeline.render?.error?.(ctx, error));
    }
  } finally {
    handlerDone = true;
    done();
  }
}

function auditUnavailable(): GatewayError {
  return new GatewayError('audit_unavailable', 'The gateway cannot record requests in its audit trail right now, so it refuses them. Retry shortly.', { retryAfter: 1 });
}

function elapsed(since: number): number {
  return Math.round((performance.now() - since) * 1000) / 1000;
}
