// Approval endpoints: people list and decide held tool calls with the admin
// key or their own (approver or admin role); apps read the decision on their
// own approvals with their own key.
import type { HttpBindings } from '@hono/node-server';
import type { Hono } from 'hono';
import { z } from 'zod';
import { authenticateKey } from '../auth/keys.js';
import { ADMIN_PERSON, authenticatePerson } from '../auth/people.js';
import { decideApproval } from '../console/actions.js';
import { GatewayError } from '../errors.js';
import type { ApprovalStatus } from '../policy/approvals.js';
import type { GatewayState } from './state.js';

type Env = { Bindings: HttpBindings };

const decision = z.strictObject({
  /** Who decided, with the shared admin key; a person's own key names them, and this is ignored. */
  by: z.string().min(1).max(200).optional(),
  reason: z.string().max(2000).optional(),
});

function notFound(): GatewayError {
  return new GatewayError('not_found', 'No such approval.', { param: 'id' });
}

export function mountApprovals(app: Hono<Env>, state: GatewayState): void {
  app.get('/v1/approvals/:id', async (c) => {
    const key = authenticateKey(state.config(), c.env.incoming.headers);
    const approval = await state.services.approvals.get(c.req.param('id'));
    // Another key's approval is "not found", so ids cannot be probed.
    if (!approval || approval.key_id !== key.id) throw notFound();
    return c.json({ object: 'approval', ...approval });
  });

  app.get('/admin/approvals', async (c) => {
    const raw = c.req.query('status');
    if (raw && raw !== 'pending' && raw !== 'approved' && raw !== 'rejected') {
      throw new GatewayError('invalid_request', 'status must be pending, approved or rejected.', { param: 'status' });
    }
    const status = (raw || undefined) as ApprovalStatus | undefined;
    const limit = Math.min(Math.max(Number(c.req.query('limit') ?? 100) || 100, 1), 1000);
    const data = await state.services.approvals.list({ status, keyId: c.req.query('key_id') || undefined, limit });
    return c.json({ object: 'list', data });
  });

  for (const action of ['approve', 'reject'] as const) {
    app.post(`/admin/approvals/:id/${action}`, async (c) => {
      let body: unknown;
      try {
        body = await c.req.json();
      } catch {
        throw new GatewayError('invalid_json', 'Send a JSON body: {"by": "<who decides>", "reason": "<why>"}.');
      }
      const parsed = decision.safeParse(body);
      const person = authenticatePerson(state.config(), c.env.incoming.headers);
      const shared = person === ADMIN_PERSON;
      if (!parsed.success || (shared && !parsed.data.by)) {
        throw new GatewayError('invalid_request', 'Send {"by": "<who decides>", "reason": "<why>"}: "by" is required with the shared admin key.', { param: 'by' });
      }
      const a = await decideApproval(state, person, {
        id: c.req.param('id'),
        approve: action === 'approve',
        reason: parsed.data.reason ?? null,
        ...(shared ? { by: parsed.data.by! } : {}),
      });
      return c.json({ object: 'approval', ...a });
    });
  }
}
