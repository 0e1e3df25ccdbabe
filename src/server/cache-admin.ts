// DELETE /admin/cache?scope=&model=: purge cached answers and embeddings,
// all of them or those of one scope (`shared`, `team:<team>`, `key:<key id>`)
// and/or one model (the configured name apps ask for, after routing).
import type { HttpBindings } from '@hono/node-server';
import type { Hono } from 'hono';
import { GatewayError } from '../errors.js';
import type { GatewayState } from './state.js';

type Env = { Bindings: HttpBindings };

const NAME = '[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}';
const SCOPE = new RegExp(`^(shared|team:${NAME}|key:${NAME})$`);
const MODEL = new RegExp(`^${NAME}$`);

export function mountCacheAdmin(app: Hono<Env>, state: GatewayState): void {
  app.delete('/admin/cache', async (c) => {
    const cache = state.services.cache;
    if (!cache) throw new GatewayError('not_found', 'This gateway has no cache.');
    const scope = c.req.query('scope') || undefined;
    const model = c.req.query('model') || undefined;
    if (scope !== undefined && !SCOPE.test(scope)) {
      throw new GatewayError('invalid_request', 'scope must be "shared", "team:<team>" or "key:<key id>" (or left out for every scope).', { param: 'scope' });
    }
    if (model !== undefined && !MODEL.test(model)) {
      throw new GatewayError('invalid_request', 'model must be a configured model name such as "fast" (or left out for every model).', { param: 'model' });
    }
    let deleted: number;
    try {
      deleted = await cache.purge({ ...(scope ? { scope } : {}), ...(model ? { model } : {}) });
    } catch (err) {
      throw new GatewayError('service_unavailable', 'The cache store is unreachable, so nothing was purged. Retry when Redis is back.', { retryAfter: 1, cause: err });
    }
    state.logger.info({ scope: scope ?? '*', model: model ?? '*', deleted }, 'cache purged');
    return c.json({ object: 'cache.purge', scope: scope ?? null, model: model ?? null, deleted });
  });
}
