// Admin endpoints, behind the admin key or a person's key: each route needs
// the permission src/auth/people.ts's permissionFor names, which the
// person's role must grant (an approver cannot read spend, an auditor
// changes nothing).
import type { HttpBindings } from '@hono/node-server';
import type { Hono } from 'hono';
import { z } from 'zod';
import { authenticatePerson, permissionFor, requirePermission } from '../auth/people.js';
import { GatewayError } from '../errors.js';
import { explainRequest, explainToolCall } from '../policy/explain.js';
import { mountApprovals } from './approvals.js';
import { mountAudit } from './audit.js';
import { mountBudgets } from './budgets.js';
import { mountCacheAdmin } from './cache-admin.js';
import { mountPromptsAdmin } from './prompts-admin.js';
import { deploymentsView, healthView } from '../console/health.js';
import type { GatewayState } from './state.js';

type Env = { Bindings: HttpBindings };

export function mountAdmin(app: Hono<Env>, state: GatewayState): void {
  app.use('/admin/*', async (c, next) => {
    const person = authenticatePerson(state.config(), c.env.incoming.headers);
    requirePermission(person, permissionFor(c.req.method, c.req.path));
    await next();
  });

  mountApprovals(app, state);
  mountAudit(app, state);
  mountBudgets(app, state);
  mountCacheAdmin(app, state);
  mountPromptsAdmin(app, state);

  app.get('/admin/health', async (c) => c.json(await healthView(state)));

  app.get('/admin/slo', (c) => c.json({ object: 'list', data: state.slo.report() }));

  app.get('/admin/deployments', (c) => c.json({ object: 'list', data: deploymentsView(state) }));

  const explainBody = z.strictObject({
    key_id: z.string().min(1),
    endpoint: z.enum(['chat', 'embeddings']).default('chat'),
    headers: z.record(z.string(), z.string()).default({}),
    request: z.record(z.string(), z.unknown()),
  });
  app.post('/admin/policy/explain', async (c) => {
    let body: unknown;
    try {
      body = await c.req.json();
    } catch {
      throw new GatewayError('invalid_json', 'Send a JSON body: {"key_id": "...", "request": {...chat request...}, "headers": {...}}.');
    }
    const parsed = explainBody.safeParse(body);
    if (!parsed.success) throw new GatewayError('invalid_request', 'Send {"key_id": "...", "request": {...}, "headers": {...}, "endpoint": "chat"|"embeddings"}.');
    const { key_id, endpoint, headers, request } = parsed.data;
    return c.json(await explainRequest(state.config(), state.services, { keyId: key_id, endpoint, headers, body: request }));
  });

  const explainToolBody = z.strictObject({
    key_id: z.string().min(1),
    /** The namespaced MCP tool name (`server__tool`). */
    tool: z.string().min(1).max(256),
    arguments: z.record(z.string(), z.unknown()).default({}),
    lane: z.string().optional(),
  });
  app.post('/admin/policy/explain-tool', async (c) => {
    let body: unknown;
    try {
      body = await c.req.json();
    } catch {
      throw new GatewayError('invalid_json', 'Send a JSON body: {"key_id": "...", "tool": "server__tool", "arguments": {...}}.');
    }
    const parsed = explainToolBody.safeParse(body);
    if (!parsed.success) throw new GatewayError('invalid_request', 'Send {"key_id": "...", "tool": "server__tool", "arguments": {...}, "lane": "<optional stricter lane>"}.');
    const { key_id, tool, arguments: args, lane } = parsed.data;
    return c.json(explainToolCall(state.config(), { keyId: key_id, tool, args, lane }));
  });

  app.post('/admin/reload', async (c) => {
    const result = await state.reload();
    if (!result.ok) throw new GatewayError('invalid_config', `The config was not reloaded; the previous one keeps serving. ${result.problems}`);
    return c.json(result);
  });
}
