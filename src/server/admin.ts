// Admin endpoints, behind the separate admin key.
import type { HttpBindings } from '@hono/node-server';
import type { Hono } from 'hono';
import { authenticateAdmin } from '../auth/keys.js';
import type { GatewayState } from './state.js';

type Env = { Bindings: HttpBindings };

export function mountAdmin(app: Hono<Env>, state: GatewayState): void {
  app.use('/admin/*', async (c, next) => {
    authenticateAdmin(state.config(), c.env.incoming.headers);
    await next();
  });

  app.get('/admin/slo', (c) => c.json({ object: 'list', data: state.slo.report() }));

  app.get('/admin/deployments', (c) => {
    const now = Date.now();
    const data = [...state.services.health.entries()].map(([id, h]) => ({
      id,
      in_flight: h.inflight,
      ewma_ms: Math.round(h.ewmaMs * 1000) / 1000,
      breaker: h.breaker.state,
      breaker_open_for_ms: h.breaker.state === 'open' ? Math.max(0, h.breaker.openUntil - now) : 0,
    }));
    return c.json({ object: 'list', data });
  });

  app.post('/admin/reload', async (c) => {
    const result = await state.reload();
    return c.json(result, result.ok ? 200 : 422);
  });
}
