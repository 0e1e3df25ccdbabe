// Writes responses straight to Node's ServerResponse: one writeHead and one
// end for JSON, chunk-by-chunk SSE with backpressure for streams.
import type { ServerResponse } from 'node:http';
import { costComment } from '../api/cost-comment.js';
import { chargeDelivered } from '../budget/stream-meter.js';
import { GatewayError, toGatewayError } from '../errors.js';
import type { Reply, RequestContext } from '../pipeline/context.js';
import type { Renderer } from '../pipeline/stage.js';
import type { ChatChunk } from '../api/schemas.js';
import { deltaText } from '../providers/usage.js';

type Headers = Record<string, string | number>;

/** Returns the JSON text it sent, so the audit keeps the very bytes the app got without serializing them again. */
export function writeJson(res: ServerResponse, status: number, body: unknown, headers: Headers): string {
  return writeJsonText(res, status, JSON.stringify(body), headers);
}

/** JSON that is text already (an upstream's answer the gateway did not change), sent as it is. */
export function writeJsonText(res: ServerResponse, status: number, text: string, headers: Headers): string {
  res.writeHead(status, { ...headers, 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
  return text;
}

export function errorHeaders(err: GatewayError, requestId: string): Headers {
  const headers: Headers = { 'x-request-id': requestId, 'x-should-retry': err.retryable ? 'true' : 'false', ...err.headers };
  if (err.retryAfter !== undefined) headers['retry-after'] = String(err.retryAfter);
  return headers;
}

/** `body`: the error in the app's API's shape, when that is not OpenAI's. */
export function writeError(res: ServerResponse, err: GatewayError, requestId: string, extra: Headers = {}, close = false, body: unknown = err.toJSON()): void {
  const headers = { ...extra, ...errorHeaders(err, requestId) };
  if (close) headers.connection = 'close';
  writeJson(res, err.status, body, headers);
}

const DONE = 'data: [DONE]\n\n';

const STREAM_HEAD = ['content-type', 'text/event-stream; charset=utf-8', 'cache-control', 'no-store', 'x-accel-buffering', 'no'] as const;
const STREAM_HEAD_NAMES = new Set(['x-request-id', 'content-type', 'cache-control', 'x-accel-buffering']);

/**
 * A stream's head as a flat [name, value, ...] list, the request's headers
 * first: Node writes a list as it is, where an object of the same headers is
 * copied into its header map one setHeader at a time (measured: 11 µs
 * against 27 µs per head here), on the way to the stream's first byte.
 */
function streamHead(ctx: RequestContext): string[] {
  const head: string[] = [];
  const headers = ctx.responseHeaders;
  for (const name in headers) if (!STREAM_HEAD_NAMES.has(name)) head.push(name, headers[name]!);
  head.push('x-request-id', ctx.id, ...STREAM_HEAD);
  return head;
}

/**
 * Streams chunks to the client as they arrive. Usage is always collected for
 * the gateway; the client sees the usage chunk only if it asked for it. A
 * failure after the first byte ends the stream with one error event and
 * [DONE], never as a clean finish. A stream that ends without the
 * provider's usage (the client left, a limit stopped it, the provider broke
 * off) is charged for what was delivered: its prompt and the text sent,
 * counted with tiktoken.
 */
export async function writeStream(
  res: ServerResponse,
  ctx: RequestContext,
  reply: Extract<Reply, { kind: 'stream' }>,
  onFirstByte: () => void,
): Promise<void> {
  res.writeHead(200, streamHead(ctx));
  let first = true;
  let delivered = '';
  try {
    for await (const chunk of reply.chunks) {
      // The provider's own count wins whenever it comes, even after the client left.
      if (chunk.usage) ctx.usage = chunk.usage;
      if (res.destroyed) break;
      // The request's one assembled answer (audit record, cache entry, trace) sees each chunk as sent.
      ctx.assembled?.add(chunk);
      const usageOnly = chunk.choices.length === 0 && !!chunk.usage;
      if (!reply.includeUsage) {
        if (usageOnly) continue;
        delete chunk.usage;
      } else if (!usageOnly) chunk.usage = null;
      const ok = res.write(`data: ${JSON.stringify(chunk)}\n\n`);
      delivered += deltaText(chunk);
      if (first) {
        first = false;
        onFirstByte();
      }
      if (!ok) await drained(res);
    }
    if (!res.destroyed) res.end(`${costComment(ctx)}${DONE}`);
  } catch (err) {
    // A run limit that ended the stream, or the client leaving, says so rather than "cancelled".
    const reason: unknown = ctx.signal.aborted ? ctx.signal.reason : undefined;
    const error = reason instanceof GatewayError ? reason : toGatewayError(err);
    ctx.error = error;
    if (!res.destroyed) res.end(`data: ${JSON.stringify(error.toJSON())}\n\n${DONE}`);
  }
  if (res.destroyed && !ctx.error && ctx.signal.aborted && ctx.signal.reason instanceof GatewayError) ctx.error = ctx.signal.reason;
  if (!ctx.usage && ctx.chat) await chargeDelivered(ctx, ctx.chat, delivered);
}

/**
 * A stream in another ingress's shape (Responses events, Anthropic events):
 * the renderer turns the chat chunks, as every stage saw them, into SSE
 * frames; the writer keeps the same books as writeStream (the provider's
 * usage, the assembled answer, what was delivered to charge when no usage
 * came). The head is written with the first frame, so a failure before it is
 * still an HTTP error (thrown).
 */
export async function writeRendered(
  res: ServerResponse,
  ctx: RequestContext,
  reply: Extract<Reply, { kind: 'stream' }>,
  renderer: Renderer,
  onFirstByte: () => void,
): Promise<void> {
  let delivered = '';
  async function* books(chunks: AsyncIterable<ChatChunk>): AsyncGenerator<ChatChunk> {
    for await (const chunk of chunks) {
      if (chunk.usage) ctx.usage = chunk.usage;
      ctx.assembled?.add(chunk);
      delivered += deltaText(chunk);
      yield chunk;
    }
  }
  const frames = renderer.stream(ctx, books(reply.chunks))[Symbol.asyncIterator]();
  const first = await frames.next();
  try {
    res.writeHead(200, streamHead(ctx));
    onFirstByte();
    for (let next = first; !next.done; next = await frames.next()) {
      if (res.destroyed) break;
      if (!res.write(next.value)) await drained(res);
    }
  } finally {
    if (!res.destroyed && res.headersSent) res.end();
    // A client that left: the renderer's generator (and the upstream stream under it) is closed.
    if (res.destroyed) await frames.return?.(undefined);
    if (res.destroyed && !ctx.error && ctx.signal.aborted && ctx.signal.reason instanceof GatewayError) ctx.error = ctx.signal.reason;
    if (!ctx.usage && ctx.chat) await chargeDelivered(ctx, ctx.chat, delivered);
  }
}

function drained(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}
