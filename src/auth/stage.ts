import type { RequestContext } from '../pipeline/context.js';
import { authenticateKey } from './keys.js';

export function authenticate(ctx: RequestContext): void {
  ctx.key = authenticateKey(ctx.config, ctx.headers);
}
