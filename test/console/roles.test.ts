import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { hashKey } from '../../src/auth/keys.js';
import { ADMIN_KEY, startTestGateway, type TestGateway } from '../helpers/gateway.js';

export const PEOPLE = {
  admin: 'sk-person-ada-admin-000000000001',
  approver: 'sk-person-alice-approver-000002',
  finance: 'sk-person-fred-finance-00000003',
  auditor: 'sk-person-audrey-auditor-000004',
} as const;

/** Config lines for four people, the auditor's key from the environment as ${ENV}. */
export const PEOPLE_YAML = `
people:
  - { name: Ada, role: admin, sha256: ${hashKey(PEOPLE.admin)} }
  - { name: Alice, role: approver, sha256: ${hashKey(PEOPLE.approver)} }
  - { name: Fred, role: finance, sha256: ${hashKey(PEOPLE.finance)} }
  - { name: Audrey, role: auditor, key: "\${AUDITOR_KEY}" }
`;
export const PEOPLE_ENV = { AUDITOR_KEY: PEOPLE.auditor };

describe('people and roles in the admin API', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startTestGateway({ extra: PEOPLE_YAML, env: PEOPLE_ENV });
  });
  after(async () => {
    await gw.close();
  });

  const call = (key: string, path: string, init: RequestInit = {}) =>
    fetch(`${gw.url}${path}`, { ...init, headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', ...init.headers } });
  let n = 0;
  const hold = async () => {
    const id = `apr_${(++n).toString(16).padStart(24, '0')}`;
    await gw.gateway.services.approvals.create({
      id, status: 'pending', created_at: new Date().toISOString(), decided_at: null, decided_by: null, reason: null, request_id: `req_${n}`,
      key_id: 'alpha', app: 'app-alpha', team: 'team-alpha', lane: 'default', model: 'fast', tool: 'send_email', tool_call_id: `call_${n}`, arguments: '{}',
    });
    return id;
  };

  it('roles – each role reads only its part', async () => {
    const reads = ['/admin/approvals', '/admin/usage', '/admin/budgets', '/admin/audit', '/admin/prompts', '/admin/health', '/admin/deployments', '/admin/slo'];
    const allowed: Record<keyof typeof PEOPLE, string[]> = {
      admin: reads,
      approver: ['/admin/approvals'],
      finance: ['/admin/usage', '/admin/budgets'],
      auditor: reads,
    };
    for (const [role, key] of Object.entries(PEOPLE) as Array<[keyof typeof PEOPLE, string]>) {
      for (const path of reads) {
        const res = await call(key, path);
        const body = (await res.json()) as { error?: { code: string; message: string } };
        if (allowed[role].includes(path)) assert.equal(res.status, 200, `${role} reads ${path}`);
        else {
          assert.equal(res.status, 403, `${role} is refused ${path}`);
          assert.equal(body.error?.code, 'permission_denied');
          assert.match(body.error!.message, new RegExp(`The ${role} role cannot`));
        }
      }
    }
    // Only an admin operates the gateway itself.
    for (const key of [PEOPLE.approver, PEOPLE.finance, PEOPLE.auditor]) assert.equal((await call(key, '/admin/reload', { method: 'POST' })).status, 403);
    assert.equal((await call(PEOPLE.admin, '/admin/reload', { method: 'POST' })).status, 200);
    assert.equal((await call('sk-nobody-at-all-0000000000', '/admin/approvals')).status, 401);
  });

  it('roles – an approver decides and is recorded by name and role; finance and the auditor cannot', async () => {
    const id = await hold();
    for (const key of [PEOPLE.finance, PEOPLE.auditor]) {
      const res = await call(key, `/admin/approvals/${id}/approve`, { method: 'POST', body: JSON.stringify({ reason: 'ok' }) });
      assert.equal(res.status, 403);
    }
    const res = await call(PEOPLE.approver, `/admin/approvals/${id}/approve`, { method: 'POST', body: JSON.stringify({ by: 'someone else', reason: 'checked the recipient' }) });
    assert.equal(res.status, 200);
    const body = (await res.json()) as { status: string; decided_by: string };
    assert.equal(body.status, 'approved');
    assert.equal(body.decided_by, 'Alice', "a person's key names them; a claimed `by` does not");
    const records = await gw.auditRecords();
    const decision = records.find((r) => r.kind === 'approval_decision' && r.id === id)!;
    assert.equal(decision.by, 'Alice');
    assert.equal(decision.by_role, 'approver');
    const text = JSON.stringify(records);
    for (const key of Object.values(PEOPLE)) {
      assert.ok(!text.includes(key), 'no person key in the audit trail');
      assert.ok(!gw.logs().includes(key), 'no person key in the logs');
    }
  });

  it('roles – the shared admin key still works as admin and still names the decider with `by`', async () => {
    const id = await hold();
    const missing = await call(ADMIN_KEY, `/admin/approvals/${id}/reject`, { method: 'POST', body: JSON.stringify({ reason: 'no' }) });
    assert.equal(missing.status, 400);
    const res = await call(ADMIN_KEY, `/admin/approvals/${id}/reject`, { method: 'POST', body: JSON.stringify({ by: 'bob', reason: 'no' }) });
    assert.equal(res.status, 200);
    const decision = (await gw.auditRecords()).find((r) => r.kind === 'approval_decision' && r.id === id)!;
    assert.equal(decision.by, 'bob');
    assert.equal(decision.by_role, 'admin');
    assert.equal((await call(ADMIN_KEY, '/admin/usage')).status, 200);
  });

  it('roles – the auditor verifies the chains (recorded) but changes nothing', async () => {
    const res = await call(PEOPLE.auditor, '/admin/audit/verify', { method: 'POST' });
    assert.equal(res.status, 200);
    const report = (await res.json()) as { object: string; ok: boolean };
    assert.equal(report.object, 'audit.verify');
    assert.equal(report.ok, true);
    const record = (await gw.auditRecords()).find((r) => r.kind === 'audit_verify')!;
    assert.equal(record.by, 'Audrey');
    assert.equal(record.by_role, 'auditor');
    assert.equal((await call(PEOPLE.approver, '/admin/audit/verify', { method: 'POST' })).status, 403);
    assert.equal((await call(PEOPLE.auditor, '/admin/prompts/x/rollback', { method: 'POST' })).status, 403);
    assert.equal((await call(PEOPLE.auditor, '/admin/cache', { method: 'DELETE' })).status, 403);
  });
});
