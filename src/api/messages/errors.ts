// Errors on the Messages endpoint in Anthropic's shape, so the Anthropic SDK
// raises its own error classes (RateLimitError, AuthenticationError...):
// {"type":"error","error":{"type":"rate_limit_error","message":"..."}}.
// The gateway's code stays visible to clients that look (`error.code`), and
// the HTTP status is the gateway's.
import type { GatewayError } from '../../errors.js';

export type AnthropicErrorType =
  | 'invalid_request_error'
  | 'authentication_error'
  | 'billing_error'
  | 'permission_error'
  | 'not_found_error'
  | 'request_too_large'
  | 'rate_limit_error'
  | 'timeout_error'
  | 'api_error'
  | 'overloaded_error';

export interface AnthropicErrorBody {
  type: 'error';
  error: { type: AnthropicErrorType; message: string; code: string; param?: string };
  request_id?: string;
}

/** Anthropic's error type for a gateway error: by status, as Anthropic documents them, with the codes whose meaning the status hides named. */
export function anthropicErrorType(err: Pick<GatewayError, 'code' | 'status'>): AnthropicErrorType {
  if (err.code === 'budget_exceeded') return 'billing_error';
  if (err.code === 'overloaded' || err.code === 'upstream_unavailable' || err.code === 'service_unavailable') return 'overloaded_error';
  if (err.code === 'upstream_timeout' || err.code === 'request_timeout') return 'timeout_error';
  switch (err.status) {
    case 400:
    case 405:
    case 415:
      return 'invalid_request_error';
    case 401:
      return 'authentication_error';
    case 402:
      return 'billing_error';
    case 403:
      return 'permission_error';
    case 404:
      return 'not_found_error';
    case 413:
      return 'request_too_large';
    case 429:
      return 'rate_limit_error';
    default:
      return 'api_error';
  }
}

export function anthropicErrorBody(err: GatewayError, requestId?: string): AnthropicErrorBody {
  return {
    type: 'error',
    error: { type: anthropicErrorType(err), message: err.message, code: err.code, ...(err.param ? { param: err.param } : {}) },
    ...(requestId ? { request_id: requestId } : {}),
  };
}
