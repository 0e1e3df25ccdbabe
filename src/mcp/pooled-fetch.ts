// The fetch the SDK's Streamable HTTP client transport uses to reach a remote
// MCP server. Its POSTs (every request and notification the gateway sends)
// go over a keep-alive undici Pool of the server's own, with the answer read
// whole under a byte bound: the same answer a web fetch would give, without
// its per-request Request/Response/stream machinery, which cost more than
// the rest of a proxied tools/call. Other methods (the GET that opens a
// server-to-client stream, DELETE) keep the web fetch, since a GET's answer
// is a stream that may never end; its body is bounded while it streams in.
import { Pool } from 'undici';

export interface PooledFetchOptions {
  url: URL;
  /** An answer (its body) over this many bytes is cut off and fails as an error. */
  limit: number;
  /** Told when an answer went over the limit, before the request fails. */
  onExceeded(): void;
  connectTimeoutMs: number;
}

export interface PooledFetch {
  fetch: typeof fetch;
  close(): Promise<void>;
}

const NULL_BODY_STATUS = new Set([101, 204, 205, 304]);

export function createPooledFetch(o: PooledFetchOptions): PooledFetch {
  const pool = new Pool(o.url.origin, {
    connections: 64,
    pipelining: 1,
    keepAliveTimeout: 30_000,
    connect: { timeout: o.connectTimeoutMs },
    // Each request is bounded by the server's timeout_ms above this (upstreams.ts).
    headersTimeout: 0,
    bodyTimeout: 0,
  });

  async function pooled(input: string | URL | Request, init?: RequestInit): Promise<Response> {
    const method = (init?.method ?? 'GET').toUpperCase();
    if (method !== 'POST' || input instanceof Request || typeof init?.body !== 'string') {
      return boundedBody(await fetch(input, init), o.limit, o.onExceeded);
    }
    const url = new URL(input);
    if (url.origin !== o.url.origin) return boundedBody(await fetch(input, init), o.limit, o.onExceeded);
    const headers: Record<string, string> = {};
    new Headers(init.headers).forEach((value, name) => (headers[name] = value));
    const res = await pool.request({ method: 'POST', path: url.pathname + url.search, headers, body: init.body, signal: init.signal ?? undefined });
    const chunks: Buffer[] = [];
    let seen = 0;
    for await (const chunk of res.body as AsyncIterable<Buffer>) {
      seen += chunk.byteLength;
      if (seen > o.limit) {
        o.onExceeded();
        res.body.destroy();
        throw new Error(`response body over ${o.limit} bytes`);
      }
      chunks.push(chunk);
    }
    const answerHeaders = new Headers();
    for (const [name, value] of Object.entries(res.headers)) {
      if (Array.isArray(value)) for (const v of value) answerHeaders.append(name, v);
      else if (value !== undefined) answerHeaders.set(name, value);
    }
    const whole = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
    const body = NULL_BODY_STATUS.has(res.statusCode) ? null : new Uint8Array(whole.buffer as ArrayBuffer, whole.byteOffset, whole.byteLength);
    return new Response(body, { status: res.statusCode, headers: answerHeaders });
  }

  return { fetch: pooled as typeof fetch, close: () => pool.close() };
}

/** The response with its body cut (as an error) once it passes `limit` bytes. */
function boundedBody(response: Response, limit: number, onExceeded: () => void): Response {
  if (!response.body) return response;
  let seen = 0;
  const counted = response.body.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        seen += chunk.byteLength;
        if (seen > limit) {
          onExceeded();
          controller.error(new Error(`response body over ${limit} bytes`));
          return;
        }
        controller.enqueue(chunk);
      },
    }),
  );
  return new Response(counted, { status: response.status, statusText: response.statusText, headers: response.headers });
}
