// Reads a JSON request body from the socket with every limit enforced while
// reading, not after: size (declared or chunked, and after decoding a
// Content-Encoding), time, UTF-8 validity and nesting depth (checked by a
// linear scan before JSON.parse recurses).
import type { IncomingMessage } from 'node:http';
import type { Readable, Transform } from 'node:stream';
import { createBrotliDecompress, createGunzip, createInflate } from 'node:zlib';
import { GatewayError } from '../errors.js';
import { jsonDepth } from '../json-depth.js';

export type RequestEncoding = 'gzip' | 'deflate' | 'br';

export interface BodyLimits {
  maxBytes: number;
  timeoutMs: number;
  maxDepth: number;
  /** Content-Encodings the gateway decodes; anything else is a 415. */
  encodings: readonly RequestEncoding[];
}

/** The server config's body limits, as every JSON endpoint reads its body. */
export function bodyLimitsOf(server: { body_limit_bytes: number; body_timeout_ms: number; max_json_depth: number; request_encodings: readonly RequestEncoding[] }): BodyLimits {
  return { maxBytes: server.body_limit_bytes, timeoutMs: server.body_timeout_ms, maxDepth: server.max_json_depth, encodings: server.request_encodings };
}

/** Set on errors after which the connection should be closed (unread body left). */
export const CLOSE_CONNECTION = Symbol('closeConnection');

function closing(err: GatewayError): GatewayError {
  (err as GatewayError & { [CLOSE_CONNECTION]?: boolean })[CLOSE_CONNECTION] = true;
  return err;
}

export function shouldCloseConnection(err: unknown): boolean {
  return !!(err as { [CLOSE_CONNECTION]?: boolean } | null)?.[CLOSE_CONNECTION];
}

// Errors never repeat what the client sent in a header: the value could be
// anything (markup, a secret pasted in the wrong place) and the error is
// logged, audited and shown in consoles.
export function checkContentType(incoming: IncomingMessage): void {
  const essence = incoming.headers['content-type']?.split(';', 1)[0]!.trim().toLowerCase();
  if (essence !== 'application/json' && !essence?.endsWith('+json')) {
    throw new GatewayError('unsupported_media_type', 'Send the body as JSON with "Content-Type: application/json".');
  }
}

// The registered content codings (IANA HTTP Content Coding Registry). Only
// these are ever named back in an error, so the message holds no client text.
const REGISTERED_CODINGS = new Set(['aes128gcm', 'br', 'compress', 'dcb', 'dcz', 'deflate', 'exi', 'gzip', 'identity', 'pack200-gzip', 'x-compress', 'x-gzip', 'zstd']);

/** The body's single content coding, or undefined for none; 415 for anything the gateway does not decode. */
export function requestEncoding(incoming: IncomingMessage, accepted: readonly RequestEncoding[]): RequestEncoding | undefined {
  const header = incoming.headers['content-encoding'];
  if (header === undefined) return undefined;
  const codings = header.split(',').map((c) => c.trim().toLowerCase()).filter((c) => c !== '' && c !== 'identity');
  if (codings.length === 0) return undefined;
  const supported = accepted.length > 0 ? `; send it uncompressed or as ${accepted.join(', ')}` : '; send it uncompressed';
  if (codings.length > 1) throw new GatewayError('unsupported_media_type', `The request body may use one Content-Encoding, not several${supported}.`);
  // RFC 9110 section 8.4.1.3: x-gzip is gzip.
  const coding = codings[0] === 'x-gzip' ? 'gzip' : codings[0]!;
  const known = accepted.find((e) => e === coding);
  if (known) return known;
  const named = REGISTERED_CODINGS.has(coding) ? `"${coding}"` : 'this';
  throw new GatewayError('unsupported_media_type', `The gateway does not accept ${named} Content-Encoding for request bodies${supported}.`);
}

function createDecoder(encoding: RequestEncoding): Transform {
  if (encoding === 'gzip') return createGunzip();
  if (encoding === 'deflate') return createInflate();
  return createBrotliDecompress();
}

/**
 * The body's bytes, decoded if it has a Content-Encoding. The size limit
 * holds for the bytes on the wire and for the decoded bytes, counted as they
 * are inflated, so a small compressed body that would inflate to gigabytes is
 * refused after the first `maxBytes` of output.
 */
export function readRawBody(incoming: IncomingMessage, limits: BodyLimits): Promise<Buffer> {
  let encoding: RequestEncoding | undefined;
  try {
    encoding = requestEncoding(incoming, limits.encodings);
  } catch (err) {
    return Promise.reject(err);
  }
  const declared = incoming.headers['content-length'];
  if (declared !== undefined && Number(declared) > limits.maxBytes) {
    return Promise.reject(closing(tooLarge(limits.maxBytes)));
  }
  const decoder = encoding ? createDecoder(encoding) : undefined;
  const source: Readable = decoder ?? incoming;
  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let wireSize = 0;
    let settled = false;
    const finish = (err: GatewayError | undefined, body?: Buffer) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      source.off('data', onData);
      source.off('end', onEnd);
      source.off('error', decoder ? onDecodeError : onError);
      incoming.off('data', onWireData);
      incoming.off('error', onError);
      incoming.off('aborted', onAborted);
      if (decoder) {
        incoming.unpipe(decoder);
        // Whatever it still reports is moot now, and must not go unhandled.
        decoder.on('error', () => {});
        decoder.destroy();
      }
      if (err) {
        incoming.pause();
        reject(err);
      } else resolve(body!);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limits.maxBytes) finish(closing(tooLarge(limits.maxBytes)));
      else chunks.push(chunk);
    };
    // Compressed bytes on the wire are limited too (a chunked upload declares no length).
    const onWireData = (chunk: Buffer) => {
      wireSize += chunk.length;
      if (wireSize > limits.maxBytes) finish(closing(tooLarge(limits.maxBytes)));
    };
    const onEnd = () => finish(undefined, chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
    const onError = () => finish(closing(new GatewayError('invalid_request', 'The request body could not be read.')));
    const onDecodeError = () => finish(closing(new GatewayError('invalid_request', `The request body is not valid ${encoding} data, as its Content-Encoding says.`)));
    const onAborted = onError;
    const timer = setTimeout(
      () => finish(closing(new GatewayError('request_timeout', `The request body did not arrive within ${limits.timeoutMs} ms.`))),
      limits.timeoutMs,
    );
    source.on('data', onData);
    source.on('end', onEnd);
    source.on('error', decoder ? onDecodeError : onError);
    if (decoder) {
      incoming.on('data', onWireData);
      incoming.on('error', onError);
      incoming.pipe(decoder);
    }
    incoming.on('aborted', onAborted);
  });
}

function tooLarge(max: number): GatewayError {
  return new GatewayError('request_too_large', `The request body is larger than the gateway's limit of ${max} bytes.`);
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false });

export function parseJsonBody(raw: Buffer, maxDepth: number): unknown {
  if (raw.length === 0) throw new GatewayError('invalid_json', 'The request body is empty; send a JSON object.');
  let text: string;
  try {
    text = utf8.decode(raw);
  } catch {
    throw new GatewayError('invalid_json', 'The request body is not valid UTF-8.');
  }
  const depth = jsonDepth(text, maxDepth);
  if (depth > maxDepth) throw new GatewayError('invalid_json', `The JSON body is nested deeper than the limit of ${maxDepth} levels.`);
  try {
    return JSON.parse(text);
  } catch (err) {
    // V8's message quotes the input; report only where parsing stopped.
    const at = /position (\d+)/.exec(String((err as Error).message))?.[1];
    throw new GatewayError('invalid_json', `The request body is not valid JSON${at ? ` (error at byte ${at})` : ''}.`);
  }
}

/** A JSON request body within the server's limits: content type, size, time, encoding and depth checked, then parsed. */
export async function readJsonBody(incoming: IncomingMessage, limits: BodyLimits): Promise<unknown> {
  checkContentType(incoming);
  return parseJsonBody(await readRawBody(incoming, limits), limits.maxDepth);
}
