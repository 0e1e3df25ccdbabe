// One queued request through the pipeline, as the server runs an app's: a
// request context built from the queued body, the request and reply phases,
// the reply rendered in the ingress's shape, then the after phase (settle,
// metrics, audit). The worker decides whether a try is the line's answer or
// is retried, and whether it is charged (only the try whose result was
// recorded is).
import { randomBytes } from 'node:crypto';
import type { CompiledConfig } from '../config/compile.js';
import { GatewayError, toGatewayError } from '../errors.js';
import { createContext, type RequestContext, type Services } from '../pipeline/context.js';
import { finishRequest, runRequest } from '../pipeline/run.js';
import type { Pipeline, RequestEnd } from '../pipeline/stage.js';
import type { WorkItem } from './types.js';

export interface Try {
  ctx: RequestContext;
  pipeline: Pipeline;
  /** The HTTP status an app would have got. */
  status: number;
  /** The body an app would have got, in the ingress's shape (an error's too). */
  body: unknown;
  /** `body`'s JSON text (the upstream's own bytes when nothing changed them), serialised once for the audit record and the output line. */
  text: string;
  error?: GatewayError;
}

export interface RunInput {
  pipeline: Pipeline;
  config: CompiledConfig;
  services: Services;
  item: WorkItem;
  /** The audit record's run_id: the batch or response id. */
  runId: string;
  signal: AbortSignal;
}

/** `batch_req_` and 24 hex digits: the line's request id in the output file and its audit record's id. */
export function lineRequestId(): string {
  return `batch_req_${randomBytes(12).toString('hex')}`;
}

export async function runQueued(input: RunInput): Promise<Try> {
  const { pipeline, item } = input;
  // A queued answer is written whole to a file or a stored Response: never a stream.
  const body: Record<string, unknown> = { ...item.body };
  delete body.stream;
  delete body.stream_options;
  const ctx = createContext({
    id: lineRequestId(),
    endpoint: pipeline.endpoint,
    ingress: pipeline.ingress,
    config: input.config,
    services: input.services,
    headers: { 'x-gateway-run-id': input.runId, 'user-agent': 'lanegate-queue' },
    signal: input.signal,
    priority: 'batch',
    queued: { kind: item.kind, owner: item.owner, keyId: item.keyId },
    readBody: async () => body,
  });
  try {
    const reply = await runRequest(pipeline, ctx);
    if (reply.kind !== 'json') throw new GatewayError('invalid_request', 'Queued requests cannot be streamed; leave stream out.', { param: 'stream' });
    ctx.status = reply.status;
    ctx.timings.firstByteMs = performance.now() - ctx.startedAt;
    const rendered = pipeline.render ? pipeline.render.json(ctx, reply) : reply.body;
    const text = (ctx.responseText = pipeline.render || reply.text === undefined ? JSON.stringify(rendered) : oneLine(reply.text));
    return { ctx, pipeline, status: reply.status, body: rendered, text };
  } catch (err) {
    const error = toGatewayError(err);
    ctx.error = error;
    ctx.status = error.status;
    if (error.code === 'internal_error') input.services.logger.error({ err, requestId: ctx.id }, 'internal error in a queued request');
    const body = pipeline.render?.error?.(ctx, error) ?? error.toJSON();
    return { ctx, pipeline, status: error.status, body, text: JSON.stringify(body), error };
  }
}

/**
 * An upstream's own bytes may be indented over several lines; a queued
 * answer's text goes into a JSONL line. Line breaks outside strings are
 * whitespace to JSON (inside one they cannot appear unescaped), so spaces
 * keep the value and make it one line, and the audit record hashes the text
 * the output line holds.
 */
function oneLine(text: string): string {
  return /[\r\n]/.test(text) ? text.replace(/[\r\n]/g, ' ') : text;
}

/**
 * The try's after phase. `charge: false` for a try whose answer lost the
 * race to another replica's (the line already had its result): its
 * reservation is released with nothing spent, so a line is charged once.
 */
export async function finishTry(t: Try, options: { charge: boolean; audit?: RequestEnd['audit'] }): Promise<void> {
  if (!options.charge) {
    t.ctx.usage = undefined;
    t.ctx.cost = undefined;
  }
  await finishRequest(t.pipeline, t.ctx, { clientDisconnected: false, audit: options.audit });
}
