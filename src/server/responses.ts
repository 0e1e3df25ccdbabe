// Stored responses over HTTP: GET and DELETE /v1/responses/{id} and
// GET /v1/responses/{id}/input_items, read with the app's own key and scoped
// to its team. Another team's id, a deleted or expired one and one never
// stored all read as the same 404, so ids cannot be probed.
import type { HttpBindings } from '@hono/node-server';
import type { Context, Hono } from 'hono';
import type { ResponsesInputItem } from '../api/responses/schema.js';
import { DEFAULT_MAX_RETENTION_DAYS, storedResponseTtlMs, type ResponsesStore, type StoredResponse } from '../api/responses/store.js';
import { authenticateKey } from '../auth/keys.js';
import { GatewayError } from '../errors.js';
import type { GatewayState } from './state.js';

type Env = { Bindings: HttpBindings };

function notFound(id: string): GatewayError {
  return new GatewayError('not_found', `No stored response "${id}" for this key's team: it never existed, was deleted, expired, or was not stored ("store": false).`, { param: 'response_id' });
}

export function mountResponses(app: Hono<Env>, state: GatewayState, prefix: string): void {
  const store = (): ResponsesStore => {
    const s = state.services.responses;
    if (!s) throw new GatewayError('service_unavailable', 'Stored responses are not available on this gateway.');
    return s;
  };
  const read = async (c: Context<Env>): Promise<StoredResponse> => {
    const key = authenticateKey(state.config(), c.env.incoming.headers);
    const id = c.req.param('id')!;
    const record = await store().get(key.team, id);
    if (!record) throw notFound(id);
    return record;
  };

  app.get(`${prefix}/responses/:id`, async (c) => c.json((await read(c)).response));

  // A background response still queued or running is cancelled: its stored
  // status says so at once, a run in this process is aborted, and an answer
  // that arrives anyway is not stored over it (queue/background.ts).
  app.post(`${prefix}/responses/:id/cancel`, async (c) => {
    const key = authenticateKey(state.config(), c.env.incoming.headers);
    const id = c.req.param('id');
    const lane = state.config().policies.lanes.get(key.lane);
    // A compare-and-set: the worker's own writes (in_progress, the answer) cannot land over the cancel, nor it over them.
    const update = await store().update(
      key.team,
      id,
      (r) => (r.response.background && (r.response.status === 'queued' || r.response.status === 'in_progress') ? { ...r, response: { ...r.response, status: 'cancelled' } } : undefined),
      lane ? storedResponseTtlMs(lane) : DEFAULT_MAX_RETENTION_DAYS * 86_400_000,
    );
    if (!update) throw notFound(id);
    if (!update.record.response.background) throw new GatewayError('invalid_request', `Response "${id}" was not created with background: true; only background responses can be cancelled.`, { param: 'response_id' });
    if (update.changed) state.services.queue?.abortRunning(id, new GatewayError('client_disconnected', 'The background response was cancelled.'));
    return c.json(update.record.response);
  });

  app.delete(`${prefix}/responses/:id`, async (c) => {
    const key = authenticateKey(state.config(), c.env.incoming.headers);
    const id = c.req.param('id');
    if (!(await store().delete(key.team, id))) throw notFound(id);
    return c.json({ id, object: 'response', deleted: true });
  });

  app.get(`${prefix}/responses/:id/input_items`, async (c) => {
    const record = await read(c);
    const order = c.req.query('order') ?? 'desc';
    if (order !== 'asc' && order !== 'desc') throw new GatewayError('invalid_request', 'order must be "asc" or "desc".', { param: 'order' });
    const limitRaw = c.req.query('limit');
    const limit = limitRaw === undefined ? 20 : Number(limitRaw);
    if (!Number.isInteger(limit) || limit < 1 || limit > 100) throw new GatewayError('invalid_request', 'limit must be an integer from 1 to 100.', { param: 'limit' });
    // A record kept as hashes (its lane keeps no bodies) has no items to list.
    const all = record.bodies === 'full' ? record.inputItems.map((item, i) => listedItem(item, record.id, i)) : [];
    if (order === 'desc') all.reverse();
    const after = c.req.query('after');
    let start = 0;
    if (after) {
      const at = all.findIndex((item) => item.id === after);
      if (at < 0) throw new GatewayError('invalid_request', `after names no input item of response "${record.id}".`, { param: 'after' });
      start = at + 1;
    }
    const data = all.slice(start, start + limit);
    return c.json({ object: 'list', data, first_id: data[0]?.id ?? null, last_id: data.at(-1)?.id ?? null, has_more: start + limit < all.length });
  });
}

/**
 * An input item as OpenAI lists it: with an id (items sent without one get a
 * stable one from their place in the conversation, so `after` pages work) and
 * message text as content parts.
 */
function listedItem(item: ResponsesInputItem, responseId: string, index: number): Record<string, unknown> & { id: string } {
  const id = typeof item.id === 'string' && item.id ? item.id : `item_${responseId.slice(5, 29)}_${index}`;
  const type = item.type ?? 'message';
  if (type !== 'message') return { ...item, id };
  const m = item as { role: string; content: unknown };
  const content = typeof m.content === 'string' ? [{ type: m.role === 'assistant' ? 'output_text' : 'input_text', text: m.content }] : m.content;
  return { ...item, type: 'message', id, status: typeof item.status === 'string' ? item.status : 'completed', content };
}

