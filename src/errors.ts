// One error type for everything a client can see. The table fixes, per stable
// code, the HTTP status, the OpenAI error `type` (what SDKs switch on) and
// whether a retry could succeed (sent to clients as `x-should-retry`).

export const ERROR_CODES = {
  invalid_request: { status: 400, type: 'invalid_request_error', retryable: false },
  invalid_json: { status: 400, type: 'invalid_request_error', retryable: false },
  unsupported_media_type: { status: 415, type: 'invalid_request_error', retryable: false },
  request_too_large: { status: 413, type: 'invalid_request_error', retryable: false },
  request_timeout: { status: 408, type: 'invalid_request_error', retryable: false },
  not_found: { status: 404, type: 'invalid_request_error', retryable: false },
  method_not_allowed: { status: 405, type: 'invalid_request_error', retryable: false },
  // A reload refused: the file on disk has problems (POST /admin/reload).
  invalid_config: { status: 422, type: 'invalid_request_error', retryable: false },
  invalid_api_key: { status: 401, type: 'authentication_error', retryable: false },
  permission_denied: { status: 403, type: 'permission_error', retryable: false },
  model_not_found: { status: 404, type: 'invalid_request_error', retryable: false },
  lane_violation: { status: 403, type: 'permission_error', retryable: false },
  policy_blocked: { status: 400, type: 'invalid_request_error', retryable: false },
  budget_exceeded: { status: 429, type: 'insufficient_quota', retryable: false },
  budget_unavailable: { status: 503, type: 'api_error', retryable: true },
  rate_limited: { status: 429, type: 'rate_limit_error', retryable: true },
  upstream_rate_limited: { status: 429, type: 'rate_limit_error', retryable: true },
  upstream_bad_request: { status: 400, type: 'invalid_request_error', retryable: false },
  upstream_auth_failed: { status: 502, type: 'api_error', retryable: false },
  upstream_error: { status: 502, type: 'api_error', retryable: true },
  upstream_timeout: { status: 504, type: 'api_error', retryable: true },
  upstream_unavailable: { status: 503, type: 'api_error', retryable: true },
  service_unavailable: { status: 503, type: 'api_error', retryable: true },
  overloaded: { status: 503, type: 'api_error', retryable: true },
  audit_unavailable: { status: 503, type: 'api_error', retryable: true },
  internal_error: { status: 500, type: 'api_error', retryable: true },
  // The client closed the connection: nobody sees this answer, but audit
  // records, metrics and logs name the end of the request with it (nginx's 499).
  client_disconnected: { status: 499, type: 'invalid_request_error', retryable: false },
} as const satisfies Record<string, { status: number; type: string; retryable: boolean }>;

export type ErrorCode = keyof typeof ERROR_CODES;

export interface GatewayErrorOptions {
  param?: string | null;
  cause?: unknown;
  /** Seconds a client should wait before retrying; sent as `retry-after`. */
  retryAfter?: number;
  /** Extra response headers (rate-limit state, for example). */
  headers?: Record<string, string>;
  /** Overrides the table's status, for upstream statuses passed on as-is. */
  status?: number;
  /** What happened upstream, for attempts, fallback decisions and audit. */
  upstream?: UpstreamFailure;
}

export type UpstreamErrorClass = 'connect' | 'timeout' | 'status' | 'protocol' | 'aborted' | 'breaker_open' | 'cooling_down' | 'shed';

export interface UpstreamFailure {
  errorClass: UpstreamErrorClass;
  status?: number;
  /** A fault of this attempt's deployment, worth trying another one for. */
  fallbackable: boolean;
  /** How long the provider asked us to wait (`retry-after-ms` or `retry-after`), in ms; unset when it did not say. */
  retryAfterMs?: number;
}

export class GatewayError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly type: string;
  readonly retryable: boolean;
  readonly param: string | null;
  readonly retryAfter: number | undefined;
  readonly headers: Record<string, string> | undefined;
  readonly upstream: UpstreamFailure | undefined;

  constructor(code: ErrorCode, message: string, options: GatewayErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    const entry = ERROR_CODES[code];
    this.name = 'GatewayError';
    this.code = code;
    this.status = options.status ?? entry.status;
    this.type = entry.type;
    this.retryable = entry.retryable;
    this.param = options.param ?? null;
    this.retryAfter = options.retryAfter;
    this.headers = options.headers;
    this.upstream = options.upstream;
  }

  toJSON(): { error: { message: string; type: string; param: string | null; code: string } } {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

/** Anything that is not a GatewayError is a bug: the client learns nothing about it. */
export function toGatewayError(err: unknown): GatewayError {
  if (err instanceof GatewayError) return err;
  return new GatewayError('internal_error', 'The gateway hit an internal error. Retry, and report the request id if it persists.', { cause: err });
}

/** `messages[0].content` from a validation issue's path. */
export function formatIssuePath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const part of path) out += typeof part === 'number' ? `[${part}]` : out ? `.${String(part)}` : String(part);
  return out;
}
