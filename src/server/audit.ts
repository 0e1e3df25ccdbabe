// Admin endpoints that read the audit trail back (behind the admin key, like
// everything under /admin). What they return is cut to each record's lane's
// current body handling, and each is marked with what its hash says of it
// (`integrity`: ok, mismatch, unsealed; see audit/read/integrity.ts).
import type { HttpBindings } from '@hono/node-server';
import type { Hono } from 'hono';
import { integrityCounts } from '../audit/read/integrity.js';
import { parseAuditFilter } from '../audit/read/filter.js';
import { restrictBodies } from '../audit/read/query.js';
import { authenticatePerson } from '../auth/people.js';
import { verifyAudit } from '../console/actions.js';
import { GatewayError } from '../errors.js';
import type { GatewayState } from './state.js';

type Env = { Bindings: HttpBindings };

/** A record as its lane's current body handling allows it to be shown (to the admin API and the console alike). */
export function visibleRecord(state: GatewayState, record: Record<string, unknown>): Record<string, unknown> {
  const lane = (record.lane as { name?: string } | null | undefined)?.name;
  return restrictBodies(record, lane ? state.config().policies.lanes.get(lane)?.audit.bodies : undefined);
}

export function mountAudit(app: Hono<Env>, state: GatewayState): void {
  const query = () => {
    const q = state.audit.query;
    if (!q) throw new GatewayError('not_found', 'The audit trail is off (audit.sink: off): there is nothing to read.');
    return q;
  };
  const visible = (record: Record<string, unknown>) => visibleRecord(state, record);

  // Registered before /admin/audit/:id's GET; a POST so a crawler never runs it, and it is recorded.
  app.post('/admin/audit/verify', async (c) => {
    const report = await verifyAudit(state, authenticatePerson(state.config(), c.env.incoming.headers));
    return c.json({ object: 'audit.verify', ...report });
  });

  app.get('/admin/audit/:id', async (c) => {
    const record = await query().get(c.req.param('id'));
    if (!record) throw new GatewayError('not_found', 'No audit record with this id (it may have expired under its lane\'s retention).', { param: 'id' });
    return c.json(visible(record));
  });

  app.get('/admin/audit', async (c) => {
    const filter = parseAuditFilter((name) => c.req.query(name));
    const page = await query().list(filter);
    // Each record is checked against its hash as it is read (integrity.ts); the page says how many failed.
    return c.json({ object: 'list', data: page.data.map(visible), integrity: integrityCounts(page.data), ...(page.next ? { next: page.next } : {}) });
  });
}
