// What the client asks of the cache. `cache-control: no-store` or
// `x-gateway-cache: off` bypass it entirely; `cache-control: no-cache` or
// `x-gateway-cache: refresh` skip the lookup but store the fresh answer.
// They can only do less than the lane allows, never more.
import type { IncomingHttpHeaders } from 'node:http';
import { GatewayError } from '../errors.js';

export type CacheMode = 'use' | 'refresh' | 'bypass';

export function requestedCacheMode(headers: IncomingHttpHeaders): { mode: CacheMode; reason?: string } {
  let mode: CacheMode = 'use';
  let reason: string | undefined;
  const control = headers['cache-control'];
  if (typeof control === 'string' && control !== '') {
    for (const part of control.split(',')) {
      const directive = part.split('=')[0]!.trim().toLowerCase();
      if (directive === 'no-store') return { mode: 'bypass', reason: 'no_store' };
      if (directive === 'no-cache') {
        mode = 'refresh';
        reason = 'no_cache';
      }
    }
  }
  const own = headers['x-gateway-cache'];
  if (typeof own === 'string' && own !== '') {
    switch (own.trim().toLowerCase()) {
      case 'off':
        return { mode: 'bypass', reason: 'header_off' };
      case 'refresh':
        return { mode: 'refresh', reason: 'header_refresh' };
      case 'on':
        break;
      default:
        throw new GatewayError('invalid_request', 'x-gateway-cache must be "off" (bypass the cache), "refresh" (skip the lookup, store the answer) or "on".', {
          param: 'x-gateway-cache',
        });
    }
  }
  return reason ? { mode, reason } : { mode };
}
