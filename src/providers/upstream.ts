// The one way adapters talk HTTP to a provider: a POST on the shared pool with
// the deployment's timeouts and response limits, upstream failures mapped to
// gateway errors.
//
// A JSON answer is read by a small dispatch handler that gathers the body's
// chunks and parses them once: no response stream, no AbortSignal, no
// promise per chunk. Streams go through undici's request() and its body
// stream, which they need to be read chunk by chunk; the stream readers bound
// each event with the same limits (sse.ts, answer-json.ts).
//
// An answer past `max_response_bytes` (declared or counted as it arrives)
// aborts the request, which destroys the connection: reading the rest only to
// keep the socket would let the provider decide how much we read.
import type { Dispatcher, Pool } from 'undici';
import type { IncomingHttpHeaders } from 'node:http';
import type { ResponseLimitsConfig, TimeoutsConfig } from '../config/schema.js';
import { GatewayError } from '../errors.js';
import { parseAnswer, type AnswerJson } from './answer-json.js';
import { abortError, type Cancel } from './cancel.js';
import { upstreamProtocolError, upstreamStatusError, upstreamTransportError } from './errors.js';

export interface UpstreamRequest {
  origin: string;
  path: string;
  headers: Record<string, string>;
  body: string;
}

/** What a call needs of its deployment. */
export interface CallSettings {
  timeouts: TimeoutsConfig;
  responseLimits: ResponseLimitsConfig;
}

export interface UpstreamCaller {
  /**
   * Sends the request and resolves with the JSON answer of a 2xx: parsed, and
   * its text kept, so an answer the gateway does not change can go to the app
   * as it came (providers/openai/response.ts says when).
   */
  json(up: UpstreamRequest, cancel: Cancel, settings: CallSettings): Promise<AnswerJson>;
  /** Sends the request and resolves with the response, its body unread (streams). */
  send(up: UpstreamRequest, cancel: Cancel, settings: CallSettings): Promise<Dispatcher.ResponseData>;
}

export function createUpstreamCaller(provider: string, pool: Pool): UpstreamCaller {
  return {
    json(up, cancel, { timeouts, responseLimits }) {
      return new Promise((resolve, reject) => {
        if (cancel.aborted) {
          reject(upstreamTransportError(provider, cancel.reason, cancel));
          return;
        }
        const handler = new JsonHandler(provider, cancel, responseLimits, resolve, reject);
        pool.dispatch(
          {
            path: up.path,
            method: 'POST',
            headers: up.headers,
            body: up.body,
            // A non-streamed answer's headers come only once it is generated.
            headersTimeout: timeouts.total_ms,
            bodyTimeout: timeouts.first_byte_ms,
          },
          handler,
        );
      });
    },

    async send(up, cancel, { timeouts }) {
      let res: Dispatcher.ResponseData;
      try {
        res = await pool.request({
          path: up.path,
          method: 'POST',
          headers: up.headers,
          body: up.body,
          signal: cancel.signal,
          headersTimeout: timeouts.first_byte_ms,
          bodyTimeout: timeouts.first_byte_ms,
        });
      } catch (err) {
        throw upstreamTransportError(provider, err, cancel);
      }
      if (res.statusCode >= 400) {
        res.body.dump().catch(() => {});
        throw upstreamStatusError(provider, res.statusCode, res.headers);
      }
      return res;
    },
  };
}

/**
 * Gathers one JSON answer. An error status settles at once (the body is read
 * and dropped so the connection stays reusable); cancelling settles at once
 * too, and aborts the request as soon as undici has started it.
 */
class JsonHandler implements Dispatcher.DispatchHandler {
  #controller: Dispatcher.DispatchController | undefined = undefined;
  #chunks: Buffer[] = [];
  #size = 0;
  #failed = false;
  #settled = false;
  readonly #onAbort = (reason: unknown) => {
    this.#controller?.abort(abortError(reason));
    this.#reject(upstreamTransportError(this.provider, reason, this.cancel));
  };

  constructor(
    private readonly provider: string,
    private readonly cancel: Cancel,
    private readonly limits: ResponseLimitsConfig,
    private readonly resolve: (value: AnswerJson) => void,
    private readonly reject: (err: GatewayError) => void,
  ) {
    cancel.onAbort(this.#onAbort);
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.#controller = controller;
    if (this.cancel.aborted) controller.abort(abortError(this.cancel.reason));
  }

  onResponseStart(controller: Dispatcher.DispatchController, statusCode: number, headers: IncomingHttpHeaders): void {
    if (statusCode >= 400) {
      this.#failed = true;
      this.#reject(upstreamStatusError(this.provider, statusCode, headers));
    }
    if (Number(headers['content-length']) > this.limits.max_response_bytes) this.#tooLarge(controller);
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    this.#size += chunk.length;
    if (this.#size > this.limits.max_response_bytes) this.#tooLarge(controller);
    else if (!this.#failed) this.#chunks.push(chunk);
  }

  onResponseEnd(): void {
    this.cancel.offAbort(this.#onAbort);
    if (this.#failed || this.#settled) return;
    const chunks = this.#chunks;
    this.#chunks = [];
    let value: AnswerJson;
    try {
      const text = (chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)).toString('utf8');
      value = parseAnswer(this.provider, text, { maxDepth: this.limits.max_json_depth, what: 'an answer' });
    } catch (err) {
      this.#reject(err instanceof GatewayError ? err : upstreamProtocolError(this.provider, 'an answer that could not be read'));
      return;
    }
    this.#settled = true;
    this.resolve(value);
  }

  onResponseError(_controller: Dispatcher.DispatchController, error: Error): void {
    this.cancel.offAbort(this.#onAbort);
    this.#chunks = [];
    this.#reject(upstreamTransportError(this.provider, error, this.cancel));
  }

  /** Drops what was gathered and aborts, which closes the connection mid-answer. */
  #tooLarge(controller: Dispatcher.DispatchController): void {
    this.#chunks = [];
    const error = upstreamProtocolError(this.provider, `an answer larger than the limit of ${this.limits.max_response_bytes} bytes`);
    this.#reject(error);
    this.#failed = true;
    this.cancel.offAbort(this.#onAbort);
    if (!controller.aborted) controller.abort(error);
  }

  #reject(err: GatewayError): void {
    if (this.#settled) return;
    this.#settled = true;
    this.reject(err);
  }
}
