import type { RequestContext } from '../pipeline/context.js';
import { authenticateKey } from './keys.js';

export function authenticate(ctx: RequestContext): void {
  ctx.key = authenticateKey(ctx.config, ctx.headers);
}

/** The Anthropic Messages endpoints: Anthropic's clients send the key as x-api-key. */
export function authenticateAnthropic(ctx: RequestContext): void {
  ctx.key = authenticateKey(ctx.config, ctx.headers, 'x-api-key');
}
