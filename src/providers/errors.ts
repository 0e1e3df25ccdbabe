// Maps what went wrong upstream to the gateway's error codes. Upstream bodies
// are never forwarded: they can hold the provider's view of our credentials,
// other tenants' data or internal hostnames.
import { GatewayError, type UpstreamErrorClass } from '../errors.js';
import { SseEventTooLargeError } from './sse.js';

type HeaderValue = string | string[] | undefined;

export function retryAfterSeconds(value: HeaderValue): number | undefined {
  const ms = retryAfterMs({ 'retry-after': value });
  return ms === undefined ? undefined : Math.ceil(ms / 1000);
}

/**
 * The wait a provider asks for, in ms: `retry-after-ms` (OpenAI, Azure) when
 * present, else `retry-after` in seconds or as an HTTP date (RFC 9110 10.2.3).
 */
export function retryAfterMs(headers: Record<string, HeaderValue>): number | undefined {
  const first = (value: HeaderValue) => (Array.isArray(value) ? value[0] : value)?.trim();
  const ms = Number(first(headers['retry-after-ms']) || NaN);
  if (Number.isFinite(ms) && ms >= 0) return Math.ceil(ms);
  const v = first(headers['retry-after']);
  if (!v) return undefined;
  const seconds = Number(v);
  if (Number.isFinite(seconds) && seconds >= 0) return Math.ceil(seconds * 1000);
  const date = Date.parse(v);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, date - Date.now());
}

export function upstreamStatusError(provider: string, status: number, headers: Record<string, HeaderValue> = {}): GatewayError {
  const upstream = (fallbackable: boolean) => ({ errorClass: 'status' as const, status, fallbackable });
  if (status === 401 || status === 403) {
    return new GatewayError(
      'upstream_auth_failed',
      `Provider "${provider}" rejected the gateway's credentials (HTTP ${status}). Your key is fine; the gateway operator must fix the provider key.`,
      { upstream: upstream(true) },
    );
  }
  if (status === 429) {
    const waitMs = retryAfterMs(headers);
    return new GatewayError('upstream_rate_limited', `Provider "${provider}" is rate limiting requests (HTTP 429). Retry after the indicated delay.`, {
      upstream: { ...upstream(true), ...(waitMs === undefined ? {} : { retryAfterMs: waitMs }) },
      retryAfter: waitMs === undefined ? 1 : Math.ceil(waitMs / 1000),
    });
  }
  if (status === 413) {
    return new GatewayError('request_too_large', `Provider "${provider}" rejected the request as too large (HTTP 413). Shorten the prompt.`, {
      upstream: upstream(false),
    });
  }
  if (status === 408) {
    return new GatewayError('upstream_timeout', `Provider "${provider}" timed out (HTTP 408).`, { upstream: upstream(true) });
  }
  if (status === 404) {
    return new GatewayError('upstream_error', `Provider "${provider}" does not serve the configured model (HTTP 404). The gateway operator must fix the deployment.`, {
      upstream: upstream(true),
    });
  }
  if (status === 503 || status === 529) {
    return new GatewayError('upstream_unavailable', `Provider "${provider}" is overloaded or unavailable (HTTP ${status}).`, {
      upstream: upstream(true),
      retryAfter: retryAfterSeconds(headers['retry-after']),
    });
  }
  if (status >= 500) {
    return new GatewayError('upstream_error', `Provider "${provider}" failed (HTTP ${status}).`, { upstream: upstream(true) });
  }
  return new GatewayError(
    'upstream_bad_request',
    `Provider "${provider}" rejected the request (HTTP ${status}). Check the parameters against what this model supports.`,
    { upstream: upstream(false) },
  );
}

export function upstreamProtocolError(provider: string, what: string): GatewayError {
  return new GatewayError('upstream_error', `Provider "${provider}" sent an invalid response: ${what}.`, {
    upstream: { errorClass: 'protocol', fallbackable: true },
  });
}

/** For errors while reading a stream whose first bytes already arrived: the provider was reached, then cut off. */
export function upstreamStreamError(provider: string, err: unknown, signal: Cancelled): GatewayError {
  if (err instanceof GatewayError || signal.aborted) return upstreamTransportError(provider, err, signal);
  if (err instanceof SseEventTooLargeError) return upstreamProtocolError(provider, `a stream event larger than the limit of ${err.limit} bytes`);
  const code = (err as { code?: string } | null)?.code ?? '';
  if (code === 'UND_ERR_BODY_TIMEOUT') return upstreamTransportError(provider, err, signal);
  return new GatewayError('upstream_error', `Provider "${provider}" cut the stream off before the answer was complete.`, {
    cause: err,
    upstream: { errorClass: 'protocol', fallbackable: true },
  });
}

/** For errors thrown by undici or by a signal while talking to the upstream. */
/** What the mapping needs to know of a cancellation (a Cancel or an AbortSignal). */
export interface Cancelled {
  readonly aborted: boolean;
  readonly reason?: unknown;
}

export function upstreamTransportError(provider: string, err: unknown, signal: Cancelled): GatewayError {
  if (err instanceof GatewayError) return err;
  const code = (err as { code?: string } | null)?.code ?? '';
  const name = (err as { name?: string } | null)?.name ?? '';
  let errorClass: UpstreamErrorClass;
  if (signal.aborted) {
    const reason = signal.reason as { name?: string } | undefined;
    errorClass = reason?.name === 'TimeoutError' ? 'timeout' : 'aborted';
  } else if (code === 'UND_ERR_CONNECT_TIMEOUT' || code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT' || name === 'TimeoutError') {
    errorClass = code === 'UND_ERR_CONNECT_TIMEOUT' ? 'connect' : 'timeout';
    if (errorClass === 'connect') {
      return new GatewayError('upstream_timeout', `Connecting to provider "${provider}" timed out.`, {
        cause: err,
        upstream: { errorClass: 'connect', fallbackable: true },
      });
    }
  } else {
    errorClass = 'connect';
  }
  if (errorClass === 'timeout') {
    return new GatewayError('upstream_timeout', `Provider "${provider}" did not answer in time.`, {
      cause: err,
      upstream: { errorClass, fallbackable: true },
    });
  }
  if (errorClass === 'aborted') {
    return new GatewayError('upstream_unavailable', 'The request was cancelled before the provider answered.', {
      cause: err,
      upstream: { errorClass, fallbackable: false },
    });
  }
  return new GatewayError('upstream_unavailable', `Provider "${provider}" could not be reached.`, {
    cause: err,
    upstream: { errorClass, fallbackable: true },
  });
}
