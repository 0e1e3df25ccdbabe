// The Batch API over HTTP: POST /v1/batches, GET /v1/batches,
// GET /v1/batches/{id}, POST /v1/batches/{id}/cancel, with the app's own key
// and scoped to its team (src/batches).
import type { HttpBindings } from '@hono/node-server';
import type { Context, Hono } from 'hono';
import { authenticateKey } from '../auth/keys.js';
import { createBatch } from '../batches/create.js';
import { cancelBatch, listBatches, readBatch, showBatch } from '../batches/read.js';
import { GatewayError } from '../errors.js';
import type { WorkStore } from '../queue/types.js';
import { bodyLimitsOf, readJsonBody } from './body.js';
import type { GatewayState } from './state.js';

type Env = { Bindings: HttpBindings };

export function mountBatches(app: Hono<Env>, state: GatewayState, prefix: string): void {
  const store = async (): Promise<WorkStore> => {
    const queue = state.services.queue;
    if (!queue) throw new GatewayError('service_unavailable', 'Batches are not available on this gateway.');
    return queue.store();
  };
  const keyOf = (c: Context<Env>) => authenticateKey(state.config(), c.env.incoming.headers);
  // Read as every JSON body is (size, time, depth and encoding bounded), never whole and unbounded.
  const body = (c: Context<Env>): Promise<unknown> => readJsonBody(c.env.incoming, bodyLimitsOf(state.config().server));

  app.post(`${prefix}/batches`, async (c) => {
    const key = keyOf(c);
    const s = await store();
    const batch = await createBatch(state.services, state.config(), key, await body(c));
    return c.json(await showBatch(s, batch));
  });
  app.get(`${prefix}/batches`, async (c) => {
    const key = keyOf(c);
    const limit = c.req.query('limit');
    return c.json(await listBatches(await store(), key.team, { after: c.req.query('after'), limit: limit === undefined ? undefined : Number(limit) }));
  });
  app.get(`${prefix}/batches/:id`, async (c) => {
    const key = keyOf(c);
    const s = await store();
    return c.json(await showBatch(s, await readBatch(s, key.team, c.req.param('id'))));
  });
  app.post(`${prefix}/batches/:id/cancel`, async (c) => {
    const key = keyOf(c);
    const s = await store();
    return c.json(await cancelBatch(s, state.services, await readBatch(s, key.team, c.req.param('id'))));
  });
}
