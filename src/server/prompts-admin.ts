// GET /admin/prompts: templates, versions, pins and the share of requests
// each version gets; GET /admin/prompts/{name}/{version}: one version,
// rendered with the example values its variables declare.
import type { HttpBindings } from '@hono/node-server';
import type { Context, Hono } from 'hono';
import { z } from 'zod';
import { authenticatePerson } from '../auth/people.js';
import { promotePrompt, rollbackPrompt } from '../console/actions.js';
import { GatewayError } from '../errors.js';
import { listPrompts, showPrompt } from '../prompts/admin.js';
import type { GatewayState } from './state.js';

type Env = { Bindings: HttpBindings };

export function mountPromptsAdmin(app: Hono<Env>, state: GatewayState): void {
  app.get('/admin/prompts', (c) => c.json(listPrompts(state.config().prompts)));

  // Promote (only with a passing eval report of the version) and roll back:
  // the pins file is edited and reloaded, and the change recorded with who made it.
  const note = z.strictObject({ note: z.string().max(2000).optional() });
  const readNote = async (c: Context<Env>): Promise<string | null> => {
    const text = await c.req.text();
    if (!text.trim()) return null;
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      throw new GatewayError('invalid_json', 'Send a JSON body: {"note": "<why>"} (or none).');
    }
    const parsed = note.safeParse(body);
    if (!parsed.success) throw new GatewayError('invalid_request', 'Send {"note": "<why>"} (or no body).');
    return parsed.data.note ?? null;
  };
  app.post('/admin/prompts/:name/rollback', async (c) => {
    const person = authenticatePerson(state.config(), c.env.incoming.headers);
    return c.json({ object: 'prompt.rollback', ...(await rollbackPrompt(state, person, { prompt: c.req.param('name'), note: await readNote(c) })) });
  });
  app.post('/admin/prompts/:name/:version/promote', async (c) => {
    const person = authenticatePerson(state.config(), c.env.incoming.headers);
    const outcome = await promotePrompt(state, person, { prompt: c.req.param('name'), version: c.req.param('version'), note: await readNote(c) });
    return c.json({ object: 'prompt.promotion', ...outcome });
  });

  app.get('/admin/prompts/:name/:version', (c) => {
    const name = c.req.param('name');
    const version = c.req.param('version');
    const view = showPrompt(state.config().prompts, name, version);
    if (!view) throw new GatewayError('not_found', `No prompt template ${name}@${version}. GET /admin/prompts lists them.`);
    return c.json(view);
  });
}
