// Reads a JSON request body from the socket with every limit enforced while
// reading, not after: size (declared or chunked), time, UTF-8 validity and
// nesting depth (checked by a linear scan before JSON.parse recurses).
import type { IncomingMessage } from 'node:http';
import { GatewayError } from '../errors.js';
import { jsonDepth } from '../json-depth.js';

export interface BodyLimits {
  maxBytes: number;
  timeoutMs: number;
  maxDepth: number;
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

export function checkContentType(incoming: IncomingMessage): void {
  const type = incoming.headers['content-type'];
  const essence = type?.split(';', 1)[0]!.trim().toLowerCase();
  if (essence !== 'application/json' && !essence?.endsWith('+json')) {
    throw new GatewayError(
      'unsupported_media_type',
      `Expected "Content-Type: application/json" but got ${type ? `"${type.slice(0, 100)}"` : 'none'}.`,
    );
  }
}

export function readRawBody(incoming: IncomingMessage, limits: BodyLimits): Promise<Buffer> {
  const declared = incoming.headers['content-length'];
  if (declared !== undefined && Number(declared) > limits.maxBytes) {
    return Promise.reject(closing(tooLarge(limits.maxBytes)));
  }
  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const finish = (err: GatewayError | undefined, body?: Buffer) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      incoming.off('data', onData);
      incoming.off('end', onEnd);
      incoming.off('error', onError);
      incoming.off('aborted', onAborted);
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
    const onEnd = () => finish(undefined, chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
    const onError = () => finish(closing(new GatewayError('invalid_request', 'The request body could not be read.')));
    const onAborted = onError;
    const timer = setTimeout(
      () => finish(closing(new GatewayError('request_timeout', `The request body did not arrive within ${limits.timeoutMs} ms.`))),
      limits.timeoutMs,
    );
    incoming.on('data', onData);
    incoming.on('end', onEnd);
    incoming.on('error', onError);
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
