// GET /admin/prompts: templates, versions, pins and the share of requests
// each version gets; GET /admin/prompts/{name}/{version}: one version,
// rendered with the example values its variables declare.
import type { HttpBindings } from '@hono/node-server';
import type { Hono } from 'hono';
import { GatewayError } from '../errors.js';
import { listPrompts, showPrompt } from '../prompts/admin.js';
import type { GatewayState } from './state.js';

type Env = { Bindings: HttpBindings };

export function mountPromptsAdmin(app: Hono<Env>, state: GatewayState): void {
  app.get('/admin/prompts', (c) => c.json(listPrompts(state.config().prompts)));

  app.get('/admin/prompts/:name/:version', (c) => {
    const name = c.req.param('name');
    const version = c.req.param('version');
    const view = showPrompt(state.config().prompts, name, version);
    if (!view) throw new GatewayError('not_found', `No prompt template ${name}@${version}. GET /admin/prompts lists them.`);
    return c.json(view);
  });
}
