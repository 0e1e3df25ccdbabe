import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startFakeOpenAI, type FakeOpenAI } from '../helpers/fake-openai.js';
import { ADMIN_KEY, APP_KEY, OTHER_KEY, startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';
import { TEST_POLICIES, WITH_POLICIES } from './fixtures.js';

interface ApprovalBody {
  id: string;
  status: string;
  tool: string;
  arguments: string;
  decided_by: string | null;
  reason: string | null;
  key_id: string;
}

describe('draft-first approvals (Redis)', () => {
  let redis: TestRedis;
  let upstream: FakeOpenAI;
  let gw: TestGateway;
  const options = () => ({
    openaiUrl: upstream.url,
    extra: `${WITH_POLICIES}\nredis: { url: "${redis.url}", key_prefix: approvals-test }\n`,
    files: { 'policies/lanes.yaml': TEST_POLICIES },
  });
  before(async () => {
    redis = await startRedis();
    upstream = await startFakeOpenAI();
    gw = await startTestGateway(options());
  });
  after(async () => {
    await gw.close();
    await upstream.close();
    await redis.stop();
  });

  const admin = (path: string, init: RequestInit = {}) =>
    fetch(`${gw.url}${path}`, { ...init, headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json', ...init.headers } });
  const asApp = (path: string, key = APP_KEY) => fetch(`${gw.url}${path}`, { headers: { authorization: `Bearer ${key}` } });
  const sendEmail = { type: 'function' as const, function: { name: 'send_email', parameters: { type: 'object' } } };
  const args = { to: 'team@example.com', subject: 'Weekly report' };
  const ask = (stream = false) =>
    fetch(`${gw.baseURL}/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${APP_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        model: 'gpt-fake',
        stream,
        tools: [sendEmail],
        messages: [{ role: 'user', content: `use tool send_email args64:${Buffer.from(JSON.stringify(args)).toString('base64')}` }],
      }),
    });

  it('approvals – a send_email call is held, reported by id, and not handed to the app', async () => {
    const res = await ask();
    assert.equal(res.status, 200);
    const ids = res.headers.get('x-gateway-approvals')!.split(',');
    assert.equal(ids.length, 1);
    assert.match(ids[0]!, /^apr_[0-9a-f]{24}$/);
    const body = (await res.json()) as { choices: Array<{ message: { tool_calls?: unknown } }>; gateway: { approvals: Array<{ id: string; status: string }> } };
    assert.equal(body.choices[0]!.message.tool_calls, undefined);
    assert.deepEqual(body.gateway.approvals, [{ id: ids[0], tool: 'send_email', status: 'pending' }]);
  });

  it('approvals – full round trip: the app polls, a human approves with who and why, the app sees it', async () => {
    const res = await ask();
    const id = res.headers.get('x-gateway-approvals')!;
    await res.arrayBuffer();

    const pending = (await (await asApp(`/v1/approvals/${id}`)).json()) as ApprovalBody;
    assert.equal(pending.status, 'pending');
    assert.deepEqual(JSON.parse(pending.arguments), args);

    // another key cannot see it, and learns nothing from trying
    const foreign = await asApp(`/v1/approvals/${id}`, OTHER_KEY);
    assert.equal(foreign.status, 404);
    const missing = await asApp('/v1/approvals/apr_000000000000000000000000');
    assert.equal(missing.status, 404);
    assert.deepEqual(await foreign.json(), await missing.json());

    const list = (await (await admin('/admin/approvals?status=pending')).json()) as { data: ApprovalBody[] };
    assert.ok(list.data.some((a) => a.id === id));
    const noAdmin = await fetch(`${gw.url}/admin/approvals`, { headers: { authorization: `Bearer ${APP_KEY}` } });
    assert.equal(noAdmin.status, 401);

    const approved = await admin(`/admin/approvals/${id}/approve`, { method: 'POST', body: JSON.stringify({ by: 'alice@example.com', reason: 'looks right' }) });
    assert.equal(approved.status, 200);
    const again = await admin(`/admin/approvals/${id}/reject`, { method: 'POST', body: JSON.stringify({ by: 'bob' }) });
    assert.equal(again.status, 409, 'a decision is final');

    const seen = (await (await asApp(`/v1/approvals/${id}`)).json()) as ApprovalBody;
    assert.equal(seen.status, 'approved');
    assert.equal(seen.decided_by, 'alice@example.com');
    assert.equal(seen.reason, 'looks right');

    const records = await gw.auditRecords();
    const request = records.find((r) => r.kind === 'request' && JSON.stringify(r.policy).includes(id))!;
    assert.ok(request, 'the held call is in the request record');
    const decision = records.find((r) => r.kind === 'approval_decision' && r.id === id)!;
    assert.equal(decision.decision, 'approved');
    assert.equal(decision.by, 'alice@example.com');
  });

  it('approvals – streamed responses hold the call too, and a rejection is recorded', async () => {
    const res = await ask(true);
    const text = await res.text();
    assert.ok(!text.includes('"tool_calls"'));
    const event = text
      .split('\n\n')
      .filter((e) => e.startsWith('data: {'))
      .map((e) => JSON.parse(e.slice(6)))
      .find((c) => c.gateway?.approvals);
    const id = event.gateway.approvals[0].id as string;
    const rejected = await admin(`/admin/approvals/${id}/reject`, { method: 'POST', body: JSON.stringify({ by: 'carol', reason: 'wrong recipient' }) });
    assert.equal(((await rejected.json()) as ApprovalBody).status, 'rejected');
  });

  it('approvals – durable across a gateway restart when Redis holds them', async () => {
    const res = await ask();
    const id = res.headers.get('x-gateway-approvals')!;
    await res.arrayBuffer();
    await gw.close();
    gw = await startTestGateway(options());
    const after = (await (await asApp(`/v1/approvals/${id}`)).json()) as ApprovalBody;
    assert.equal(after.status, 'pending');
    assert.equal(after.tool, 'send_email');
  });
});
