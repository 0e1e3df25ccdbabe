import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { ADMIN_KEY, APP_KEY, startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';
import { attachToolGateway, callApprovalTool, heldResult, type ToolCallDecision } from '../../src/mcp/govern.js';
import { countingExecutor, govern, keyOf, MCP_POLICIES, WITH_MCP_POLICIES } from './fixtures.js';

// Two replicas sharing one Redis: a held call approved once runs once, whichever
// replica the agent's retries reach, and a rejected or expired one never runs.
describe('MCP draft-first approvals across two replicas (Redis)', () => {
  let redis: TestRedis;
  let a: TestGateway;
  let b: TestGateway;
  // One upstream server behind both replicas: its call count is the truth.
  const upstream = countingExecutor();
  before(async () => {
    redis = await startRedis();
    const options = () => ({
      extra: `${WITH_MCP_POLICIES}\nredis: { url: "${redis.url}", key_prefix: mcp-approvals }\n`,
      files: { 'policies/lanes.yaml': MCP_POLICIES },
    });
    a = await startTestGateway(options());
    b = await startTestGateway(options());
    for (const gw of [a, b]) attachToolGateway(gw.gateway.services, { execute: upstream.execute });
  });
  after(async () => {
    await a.close();
    await b.close();
    await redis.stop();
  });

  const admin = (gw: TestGateway, path: string, body: unknown) =>
    fetch(`${gw.url}${path}`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const ask = (gw: TestGateway, id: string, key = 'alpha') =>
    callApprovalTool({ services: gw.gateway.services, config: gw.gateway.config(), key: keyOf(gw.gateway, key), args: { approval_id: id }, requestId: 'req_poll' });
  const statusOf = (r: CallToolResult) => (r.structuredContent as { status?: string } | undefined)?.status;
  const textOf = (r: CallToolResult) => (r.content[0] as { text: string }).text;
  const hold = async (gw: TestGateway, to: string): Promise<Extract<ToolCallDecision, { kind: 'held' }>> => {
    const d = await govern(gw.gateway, { name: 'mail__send', args: { to, subject: 'Release notes' }, runId: 'approval-run' });
    assert.equal(d.kind, 'held');
    return d as Extract<ToolCallDecision, { kind: 'held' }>;
  };

  it('approvals – a held call keeps its full arguments in the approvals API and does not run', async () => {
    const held = await hold(a, 'team@example.com');
    assert.match(held.approvalId, /^apr_[0-9a-f]{24}$/);
    assert.deepEqual(heldResult(held).structuredContent, { status: 'pending_approval', approval_id: held.approvalId });
    const res = await fetch(`${b.url}/admin/approvals?status=pending`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } });
    const list = (await res.json()) as { data: Array<Record<string, unknown>> };
    const listed = list.data.find((x) => x.id === held.approvalId)!;
    assert.equal(listed.kind, 'mcp_tool_call');
    assert.equal(listed.tool, 'mail__send');
    assert.deepEqual(JSON.parse(String(listed.arguments)), { to: 'team@example.com', subject: 'Release notes' });
    assert.deepEqual({ ...(listed.mcp as object), expires_at: undefined }, { server: 'mail', tool: 'send', canonical: 'mail__send', run_id: 'approval-run', expires_at: undefined });
    const pending = await ask(b, held.approvalId);
    assert.equal(statusOf(pending), 'pending');
    assert.equal(upstream.calls.length, 0);
  });

  it('approvals – approved once, executed exactly once across retries on both replicas, with its result for every retry', async () => {
    const held = await hold(a, 'dev@example.com');
    const approved = await admin(b, `/admin/approvals/${held.approvalId}/approve`, { by: 'alice', reason: 'looks right' });
    assert.equal(approved.status, 200);
    const before = upstream.calls.length;
    // Another key asking first learns nothing and takes nothing away from the owner.
    const foreign = await ask(a, held.approvalId, 'beta');
    assert.equal(foreign.isError, true);
    assert.match(textOf(foreign), /No such approval/);
    assert.equal(upstream.calls.length, before);
    // The agent retries on both replicas at once, then again.
    const first = await Promise.all([ask(a, held.approvalId), ask(b, held.approvalId), ask(a, held.approvalId), ask(b, held.approvalId)]);
    const ran = first.filter((r) => statusOf(r) !== 'running');
    assert.ok(ran.length >= 1);
    assert.equal(upstream.calls.length, before + 1, 'one execution, whoever asked');
    assert.deepEqual(upstream.calls.at(-1), { server: 'mail', tool: 'send', args: { to: 'dev@example.com', subject: 'Release notes' } });
    const again = await ask(b, held.approvalId);
    assert.match(textOf(again), /ran mail\/send/);
    assert.deepEqual(again, ran[0]);
    assert.equal(upstream.calls.length, before + 1);
    // The app may read it over HTTP too, result included.
    const polled = (await (await fetch(`${a.baseURL}/approvals/${held.approvalId}`, { headers: { authorization: `Bearer ${APP_KEY}` } })).json()) as {
      status: string;
      execution: { status: string; result: string };
    };
    assert.equal(polled.status, 'approved');
    assert.equal(polled.execution.status, 'done');
    assert.deepEqual(JSON.parse(polled.execution.result), again);
    assert.match(textOf(await ask(a, held.approvalId, 'beta')), /No such approval/);
    const records = [...(await a.auditRecords()), ...(await b.auditRecords())].filter((r) => r.kind === 'tool_call' && r.approval_id === held.approvalId);
    assert.deepEqual(records.map((r) => r.decision).sort(), ['executed', 'held']);
  });

  it('approvals – a rejected call never runs, and says so with who and why', async () => {
    const held = await hold(b, 'all@example.com');
    const before = upstream.calls.length;
    assert.equal((await admin(a, `/admin/approvals/${held.approvalId}/reject`, { by: 'bob', reason: 'wrong list' })).status, 200);
    for (const gw of [a, b, a]) {
      const r = await ask(gw, held.approvalId);
      assert.equal(statusOf(r), 'rejected');
      assert.equal(r.isError, true);
      assert.match(textOf(r), /rejected by bob: wrong list/);
    }
    assert.equal(upstream.calls.length, before);
  });

  it('approvals – an expired call never runs, even if approved later', async () => {
    attachToolGateway(a.gateway.services, { approvalTtlMs: -1 });
    try {
      const held = await hold(a, 'late@example.com');
      const before = upstream.calls.length;
      assert.equal(statusOf(await ask(b, held.approvalId)), 'expired');
      assert.equal((await admin(b, `/admin/approvals/${held.approvalId}/approve`, { by: 'carol' })).status, 200);
      const r = await ask(a, held.approvalId);
      assert.equal(statusOf(r), 'expired');
      assert.equal(r.isError, true);
      assert.equal(upstream.calls.length, before);
    } finally {
      attachToolGateway(a.gateway.services, { approvalTtlMs: 24 * 60 * 60 * 1000 });
    }
  });

  it('approvals – a model tool call held for the app is never run by the gateway, approved or not', async () => {
    const id = 'apr_0123456789abcdef01234567';
    await a.gateway.services.approvals.create({
      id, status: 'pending', created_at: new Date().toISOString(), decided_at: null, decided_by: null, reason: null, request_id: 'req_chat',
      key_id: 'alpha', app: 'app-alpha', team: 'team-alpha', lane: 'green', model: 'fast', tool: 'mail__send', tool_call_id: 'call_1', arguments: '{}',
    });
    assert.equal((await admin(a, `/admin/approvals/${id}/approve`, { by: 'dana' })).status, 200);
    const before = upstream.calls.length;
    const r = await ask(b, id);
    assert.equal(r.isError, true);
    assert.match(textOf(r), /your app runs itself/);
    assert.equal(upstream.calls.length, before);
    const missing = await ask(a, 'apr_000000000000000000000000');
    assert.match(textOf(missing), /No such approval/);
  });

  const pendingGauge = async (gw: TestGateway, kind: string): Promise<number> => {
    const text = await (await fetch(`${gw.url}/metrics`)).text();
    const line = text.split('\n').find((l) => l.startsWith(`lanegate_approvals_pending{kind="${kind}"}`));
    assert.ok(line, `no lanegate_approvals_pending{kind="${kind}"} in /metrics`);
    return Number(line.split(' ').at(-1));
  };

  it('approvals – /metrics shows the calls awaiting approval, MCP and model ones, on every replica, and not once decided', async () => {
    const mcpBefore = await pendingGauge(b, 'mcp_tool_call');
    const modelBefore = await pendingGauge(b, 'model_tool_call');
    const held = await hold(a, 'gauge@example.com');
    await a.gateway.services.approvals.create({
      id: 'apr_0123456789abcdef01234599', status: 'pending', created_at: new Date().toISOString(), decided_at: null, decided_by: null, reason: null, request_id: 'req_chat2',
      key_id: 'alpha', app: 'app-alpha', team: 'team-alpha', lane: 'green', model: 'fast', tool: 'send_email', tool_call_id: 'call_2', arguments: '{}',
    });
    for (const gw of [a, b]) {
      assert.equal(await pendingGauge(gw, 'mcp_tool_call'), mcpBefore + 1);
      assert.equal(await pendingGauge(gw, 'model_tool_call'), modelBefore + 1);
    }
    assert.equal((await admin(b, `/admin/approvals/${held.approvalId}/reject`, { by: 'erin' })).status, 200);
    assert.equal((await admin(a, '/admin/approvals/apr_0123456789abcdef01234599/approve', { by: 'erin' })).status, 200);
    assert.equal(await pendingGauge(a, 'mcp_tool_call'), mcpBefore);
    assert.equal(await pendingGauge(b, 'model_tool_call'), modelBefore);
  });

  it('approvals – the tool governance parts are a declared field of each gateway\'s services, the ones an approved call runs with', async () => {
    assert.notEqual(a.gateway.services.toolGateway, b.gateway.services.toolGateway);
    const own = countingExecutor();
    const previous = b.gateway.services.toolGateway.execute;
    b.gateway.services.toolGateway.execute = own.execute;
    try {
      const held = await hold(a, 'field@example.com');
      assert.equal((await admin(a, `/admin/approvals/${held.approvalId}/approve`, { by: 'frank' })).status, 200);
      const before = upstream.calls.length;
      const r = await ask(b, held.approvalId);
      assert.equal(r.isError, undefined);
      assert.equal(own.calls.length, 1, "b's own executor ran the call");
      assert.equal(upstream.calls.length, before);
    } finally {
      b.gateway.services.toolGateway.execute = previous;
    }
  });
});
