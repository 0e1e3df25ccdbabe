// Admin endpoints that read the audit trail back (behind the admin key, like
// everything under /admin). What they return is cut to each record's lane's
// current body handling, and each is marked with what its hash says of it
// (`integrity`: ok, mismatch, unsealed; see audit/read/integrity.ts).
import type { HttpBindings } from '@hono/node-server';
import type { Hono } from 'hono';
import { integrityCounts } from '../audit/read/integrity.js';
import { decodeCursor, restrictBodies, type AuditFilter } from '../audit/read/query.js';
import { GatewayError } from '../errors.js';
import type { GatewayState } from './state.js';

type Env = { Bindings: HttpBindings };

const MAX_LIMIT = 1000;

function instant(raw: string | undefined, param: string): number | undefined {
  if (raw === undefined || raw === '') return undefined;
  const ms = /^\d+$/.test(raw) ? Number(raw) : Date.parse(raw);
  if (!Number.isFinite(ms)) throw new GatewayError('invalid_request', `${param} must be an ISO 8601 time (2025-01-31T12:00:00Z) or milliseconds since the epoch.`, { param });
  return ms;
}

export function mountAudit(app: Hono<Env>, state: GatewayState): void {
  const query = () => {
    const q = state.audit.query;
    if (!q) throw new GatewayError('not_found', 'The audit trail is off (audit.sink: off): there is nothing to read.');
    return q;
  };
  const visible = (record: Record<string, unknown>) => {
    const lane = (record.lane as { name?: string } | null | undefined)?.name;
    return restrictBodies(record, lane ? state.config().policies.lanes.get(lane)?.audit.bodies : undefined);
  };

  app.get('/admin/audit/:id', async (c) => {
    const record = await query().get(c.req.param('id'));
    if (!record) throw new GatewayError('not_found', 'No audit record with this id (it may have expired under its lane\'s retention).', { param: 'id' });
    return c.json(visible(record));
  });

  app.get('/admin/audit', async (c) => {
    const q = (name: string) => c.req.query(name) || undefined;
    const status = q('status');
    if (status !== undefined && !/^([1-5]xx|[1-5]\d\d)$/i.test(status)) {
      throw new GatewayError('invalid_request', 'status must be an HTTP status (429) or a class (5xx).', { param: 'status' });
    }
    const rawLimit = q('limit');
    const limit = rawLimit === undefined ? 100 : Number(rawLimit);
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIMIT) throw new GatewayError('invalid_request', `limit must be a whole number from 1 to ${MAX_LIMIT}.`, { param: 'limit' });
    const after = q('after');
    const cursor = after === undefined ? undefined : decodeCursor(after);
    if (after !== undefined && !cursor) throw new GatewayError('invalid_request', 'after must be the `next` value of a previous page.', { param: 'after' });
    const filter: AuditFilter = {
      from: instant(q('from'), 'from'),
      to: instant(q('to'), 'to'),
      team: q('team'),
      app: q('app'),
      lane: q('lane'),
      model: q('model'),
      status,
      kind: q('kind'),
      limit,
      after: cursor,
    };
    const page = await query().list(filter);
    // Each record is checked against its hash as it is read (integrity.ts); the page says how many failed.
    return c.json({ object: 'list', data: page.data.map(visible), integrity: integrityCounts(page.data), ...(page.next ? { next: page.next } : {}) });
  });
}
