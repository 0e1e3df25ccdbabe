import type { RequestContext } from '../pipeline/context.js';
import { GatewayError } from '../errors.js';
import { authenticateKey, keyById } from './keys.js';

export function authenticate(ctx: RequestContext): void {
  ctx.key = authenticateKey(ctx.config, ctx.headers);
}

/** The Anthropic Messages endpoints: Anthropic's clients send the key as x-api-key. */
export function authenticateAnthropic(ctx: RequestContext): void {
  ctx.key = authenticateKey(ctx.config, ctx.headers, 'x-api-key');
}

/** Work from the durable queue runs as the key that queued it, as that key is configured now. */
export function authenticateQueued(ctx: RequestContext): void {
  const key = ctx.queued && keyById(ctx.config, ctx.queued.keyId);
  if (!key) throw new GatewayError('invalid_api_key', 'The key this work was queued with is no longer configured on the gateway.');
  ctx.key = key;
}
