// The one way adapters talk HTTP to a provider: a POST on the shared pool with
// the deployment's timeouts, upstream failures mapped to gateway errors.
import type { Dispatcher, Pool } from 'undici';
import type { TimeoutsConfig } from '../config/schema.js';
import { upstreamProtocolError, upstreamStatusError, upstreamTransportError } from './errors.js';

export interface UpstreamRequest {
  origin: string;
  path: string;
  headers: Record<string, string>;
  body: string;
}

export interface UpstreamCaller {
  send(up: UpstreamRequest, signal: AbortSignal, options: { stream: boolean; timeouts: TimeoutsConfig }): Promise<Dispatcher.ResponseData>;
  readJson(res: Dispatcher.ResponseData, signal: AbortSignal): Promise<unknown>;
}

export function createUpstreamCaller(provider: string, pool: Pool): UpstreamCaller {
  return {
    async send(up, signal, { stream, timeouts }) {
      let res: Dispatcher.ResponseData;
      try {
        res = await pool.request({
          path: up.path,
          method: 'POST',
          headers: up.headers,
          body: up.body,
          signal,
          // A non-streamed answer's headers come only once it is generated.
          headersTimeout: stream ? timeouts.first_byte_ms : timeouts.total_ms,
          bodyTimeout: timeouts.first_byte_ms,
        });
      } catch (err) {
        throw upstreamTransportError(provider, err, signal);
      }
      if (res.statusCode >= 400) {
        res.body.dump().catch(() => {});
        throw upstreamStatusError(provider, res.statusCode, res.headers);
      }
      return res;
    },
    async readJson(res, signal) {
      try {
        return await res.body.json();
      } catch (err) {
        if (err instanceof SyntaxError) throw upstreamProtocolError(provider, 'a body that is not JSON');
        throw upstreamTransportError(provider, err, signal);
      }
    },
  };
}
