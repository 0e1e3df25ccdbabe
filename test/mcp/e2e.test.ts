// Governance with the official MCP SDK on both sides: the SDK Client drives
// the real gateway's /mcp with a gateway key, and the SDK server behind it
// (test/helpers/mcp-http-server.ts) records every tool it executes, so
// "refused", "held" and "executed once" are read off the server, not the
// gateway. Two replicas share one real redis-server for held calls.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { ADMIN_KEY, APP_KEY, OTHER_KEY, startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { startFakeMcpHttpServer, type FakeMcpHttpServer } from '../helpers/mcp-http-server.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';

const POLICIES = `
default_lane: green
lanes:
  green:
    rank: 10
    audit: { bodies: full }
    detectors:
      card: redact
    tools:
      deny: [web__die]
      require_approval: [web__send_email]
      recipients: { fields: [to], allow_domains: [example.com] }
      paths: { fields: [path], roots: [/srv/repo] }
  amber:
    rank: 20
    detectors:
      card: redact
    tools:
      require_approval: [web__card]
`;

function config(webUrl: string, redisUrl: string): string {
  return `
policies: { dir: ./policies }
redis: { url: "${redisUrl}", key_prefix: mcp-e2e }
mcp_servers:
  web:
    url: ${webUrl}
    timeout_ms: 3000
tool_runs:
  - keys: [beta]
    max_tool_calls: 2
`;
}

async function connect(gw: TestGateway, key: string, headers: Record<string, string> = {}): Promise<Client> {
  const client = new Client({ name: 'e2e-agent', version: '1.0.0' });
  const transport = new StreamableHTTPClientTransport(new URL(`${gw.url}/mcp`), { requestInit: { headers: { authorization: `Bearer ${key}`, ...headers } } });
  await client.connect(transport);
  return client;
}

const textOf = (r: CallToolResult) => r.content.map((c) => (c.type === 'text' ? c.text : '')).join('');
const statusOf = (r: CallToolResult) => (r.structuredContent as { status?: string } | undefined)?.status;

describe('MCP governance end to end (SDK client → two gateway replicas → SDK server)', () => {
  let web: FakeMcpHttpServer;
  let redis: TestRedis;
  let a: TestGateway;
  let b: TestGateway;
  let agentA: Client;
  let agentB: Client;
  const clients: Client[] = [];

  const executed = (tool: string, match: (args: Record<string, unknown>) => boolean = () => true) =>
    web.calls.filter((c) => c.tool === tool && match(c.args)).length;
  const call = async (client: Client, name: string, args: Record<string, unknown>) => (await client.callTool({ name, arguments: args })) as CallToolResult;
  const admin = (gw: TestGateway, path: string, body: unknown) =>
    fetch(`${gw.url}${path}`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const hold = async (subject: string): Promise<string> => {
    const r = await call(agentA, 'web__send-email', { to: 'team@example.com', subject, body: 'hello' });
    assert.equal(statusOf(r), 'pending_approval', textOf(r));
    const id = (r.structuredContent as { approval_id: string }).approval_id;
    assert.match(id, /^apr_[0-9a-f]{24}$/);
    assert.ok(textOf(r).includes(id), 'the held result names the approval id');
    assert.equal(executed('send-email', (x) => x.subject === subject), 0, 'a held call does not run');
    return id;
  };

  before(async () => {
    web = await startFakeMcpHttpServer();
    redis = await startRedis();
    const options = () => ({ extra: config(web.url, redis.url), files: { 'policies/lanes.yaml': POLICIES }, betaLane: 'amber' });
    a = await startTestGateway(options());
    b = await startTestGateway(options());
    agentA = await connect(a, APP_KEY);
    agentB = await connect(b, APP_KEY);
    clients.push(agentA, agentB);
  });
  after(async () => {
    for (const c of clients) await c.close();
    await a?.close();
    await b?.close();
    await web?.close();
    await redis?.stop();
  });

  it('tools/list – the upstream tools under the lane, and the approval tool', async () => {
    const names = (await agentA.listTools()).tools.map((t) => t.name);
    for (const n of ['web__send-email', 'web__write_file', 'web__echo', 'lanegate__approval']) assert.ok(names.includes(n), n);
    assert.ok(!names.includes('web__die'));
  });

  it('a recipient outside the allowed domains – an error result naming the rule, never executed', async () => {
    const r = await call(agentA, 'web__send-email', { to: 'boss@evil.test', subject: 'outside', body: 'x' });
    assert.equal(r.isError, true);
    assert.match(textOf(r), /rule: recipients\)/);
    assert.match(textOf(r), /evil\.test/);
    assert.equal(executed('send-email'), 0);
  });

  it('a path outside the roots – an error result naming the rule, never executed', async () => {
    for (const path of ['/etc/passwd', '/srv/repo/../../etc/shadow']) {
      const r = await call(agentA, 'web__write_file', { path, content: 'x' });
      assert.equal(r.isError, true, path);
      assert.match(textOf(r), /rule: paths\)/, path);
    }
    assert.equal(executed('write_file'), 0);
    const ok = await call(agentA, 'web__write_file', { path: '/srv/repo/notes.txt', content: 'fine' });
    assert.equal(ok.isError, undefined, textOf(ok));
    assert.deepEqual(web.calls.filter((c) => c.tool === 'write_file'), [{ tool: 'write_file', args: { path: '/srv/repo/notes.txt', content: 'fine' } }]);
  });

  it('a held call – approved on one replica, polled 3 times at once across both: executed exactly once, same result for all', async () => {
    const id = await hold('release notes');
    const pending = await call(agentB, 'lanegate__approval', { approval_id: id });
    assert.equal(statusOf(pending), 'pending');
    assert.equal(executed('send-email'), 0);
    const approved = await admin(b, `/admin/approvals/${id}/approve`, { by: 'alice', reason: 'ok' });
    assert.equal(approved.status, 200, await approved.text());
    const polls = await Promise.all([agentA, agentB, agentA].map((c) => call(c, 'lanegate__approval', { approval_id: id })));
    assert.equal(executed('send-email', (x) => x.subject === 'release notes'), 1, 'one execution, whoever asked');
    assert.deepEqual(web.calls.filter((c) => c.tool === 'send-email'), [{ tool: 'send-email', args: { to: 'team@example.com', subject: 'release notes', body: 'hello' } }]);
    const done = polls.filter((r) => statusOf(r) !== 'running');
    assert.ok(done.length >= 1, JSON.stringify(polls));
    for (const r of done) assert.equal(textOf(r), 'sent to team@example.com');
    // Later polls, on either replica, get the stored result and run nothing.
    for (const c of [agentB, agentA]) assert.equal(textOf(await call(c, 'lanegate__approval', { approval_id: id })), 'sent to team@example.com');
    assert.equal(executed('send-email'), 1);
  });

  it('a held call that is rejected never executes', async () => {
    const id = await hold('rejected mail');
    assert.equal((await admin(a, `/admin/approvals/${id}/reject`, { by: 'bob', reason: 'wrong list' })).status, 200);
    const polls = await Promise.all([agentA, agentB, agentB].map((c) => call(c, 'lanegate__approval', { approval_id: id })));
    for (const r of polls) {
      assert.equal(statusOf(r), 'rejected');
      assert.equal(r.isError, true);
      assert.match(textOf(r), /rejected by bob: wrong list/);
    }
    assert.equal(executed('send-email', (x) => x.subject === 'rejected mail'), 0);
  });

  it('another key cannot learn about or run a held call', async () => {
    const id = await hold('not yours');
    assert.equal((await admin(a, `/admin/approvals/${id}/approve`, { by: 'alice' })).status, 200);
    const other = await connect(b, OTHER_KEY);
    clients.push(other);
    const r = await call(other, 'lanegate__approval', { approval_id: id });
    assert.equal(r.isError, true);
    assert.match(textOf(r), /No such approval/);
    assert.equal(executed('send-email', (x) => x.subject === 'not yours'), 0);
  });

  it('a run over its tool-call budget – refused naming the limit, not executed; another run goes on', async () => {
    const agent = await connect(a, OTHER_KEY, { 'x-gateway-run-id': 'budget-run' });
    clients.push(agent);
    for (let i = 0; i < 2; i++) assert.equal(textOf(await call(agent, 'web__echo', { text: `budget ${i}` })), `budget ${i}`);
    const over = await call(agent, 'web__echo', { text: 'budget 2' });
    assert.equal(over.isError, true);
    assert.match(textOf(over), /rule: tool_runs\.max_tool_calls\)/);
    assert.match(textOf(over), /allows 2/);
    assert.equal(executed('echo', (x) => x.text === 'budget 2'), 0);
    // The budget is the run's, shared by the replicas through Redis.
    const elsewhere = await connect(b, OTHER_KEY, { 'x-gateway-run-id': 'budget-run' });
    clients.push(elsewhere);
    assert.equal((await call(elsewhere, 'web__echo', { text: 'budget 3' })).isError, true);
    assert.equal(executed('echo', (x) => x.text === 'budget 3'), 0);
    const fresh = await connect(a, OTHER_KEY, { 'x-gateway-run-id': 'budget-run-2' });
    clients.push(fresh);
    assert.equal(textOf(await call(fresh, 'web__echo', { text: 'budget other' })), 'budget other');
  });

  it('without x-gateway-run-id the MCP session is the run – each session its own budget, kept across replicas, named in the audit', async () => {
    const one = await connect(a, OTHER_KEY);
    clients.push(one);
    const session = (one.transport as StreamableHTTPClientTransport).sessionId;
    assert.match(session ?? '', /^mcps_[0-9a-f]{32}$/, 'initialize issues a session id');
    for (let i = 0; i < 2; i++) assert.equal(textOf(await call(one, 'web__echo', { text: `session ${i}` })), `session ${i}`);
    assert.match(textOf(await call(one, 'web__echo', { text: 'session 2' })), /rule: tool_runs\.max_tool_calls\)/);
    // The same session on the other replica is the same run (the id holds no state, the budget is in Redis).
    const raw = await fetch(`${b.url}/mcp`, {
      method: 'POST',
      headers: { authorization: `Bearer ${OTHER_KEY}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-session-id': session! },
      body: JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'web__echo', arguments: { text: 'session 3' } } }),
    });
    assert.match(JSON.stringify(await raw.json()), /tool_runs\.max_tool_calls/);
    assert.equal(executed('echo', (x) => x.text === 'session 2' || x.text === 'session 3'), 0);
    // Another session of the same key is another run.
    const two = await connect(b, OTHER_KEY);
    clients.push(two);
    assert.notEqual((two.transport as StreamableHTTPClientTransport).sessionId, session);
    assert.equal(textOf(await call(two, 'web__echo', { text: 'session other' })), 'session other');
    const records = [...(await a.auditRecords()), ...(await b.auditRecords())].filter((r) => r.kind === 'tool_call' && r.run_id === session);
    assert.deepEqual(records.map((r) => r.decision).sort(), ['executed', 'executed', 'refused', 'refused'], 'the tool_call records name the session as their run');
  });

  it('a detector redacts the result before the agent sees it', async () => {
    const r = await call(agentA, 'web__echo', { text: 'card on file' });
    assert.equal(textOf(r), 'card on file');
    // The argument is clean; the card number comes from the server's answer.
    const card = await call(agentA, 'web__card', {});
    assert.equal(executed('card'), 1);
    assert.ok(!textOf(card).includes('4111'), textOf(card));
    assert.match(textOf(card), /\[CARD_1\]/);
  });

  it('a held call approved and run later – its result is redacted too, for the agent and in the approvals API', async () => {
    const agent = await connect(b, OTHER_KEY);
    clients.push(agent);
    const held = await call(agent, 'web__card', {});
    assert.equal(statusOf(held), 'pending_approval', textOf(held));
    const id = (held.structuredContent as { approval_id: string }).approval_id;
    const before = executed('card');
    assert.equal((await admin(a, `/admin/approvals/${id}/approve`, { by: 'alice' })).status, 200);
    const r = await call(agent, 'lanegate__approval', { approval_id: id });
    assert.equal(executed('card'), before + 1);
    assert.ok(!textOf(r).includes('4111'), textOf(r));
    assert.match(textOf(r), /\[CARD_1\]/);
    const polled = (await (await fetch(`${a.baseURL}/approvals/${id}`, { headers: { authorization: `Bearer ${OTHER_KEY}` } })).json()) as { execution: { result: string } };
    assert.ok(!polled.execution.result.includes('4111'), polled.execution.result);
  });

  it('audit – the tool calls and the LLM request of one run share its run id', async () => {
    const runId = 'e2e-linked-run';
    const llm = a.client(APP_KEY);
    const chat = await llm.chat.completions.create({ model: 'fast', messages: [{ role: 'user', content: 'plan' }] }, { headers: { 'x-gateway-run-id': runId } });
    assert.ok(chat.choices[0]?.message);
    const agent = await connect(a, APP_KEY, { 'x-gateway-run-id': runId });
    clients.push(agent);
    await call(agent, 'web__write_file', { path: '/srv/repo/a.ts', content: 'x' });
    await call(agent, 'web__write_file', { path: '/etc/hosts', content: 'x' });
    // A held call of the run, approved, then run through the other replica: both records carry the run id.
    const held = await call(agent, 'web__send-email', { to: 'ops@example.com', subject: 'linked', body: 'x' });
    const id = (held.structuredContent as { approval_id: string }).approval_id;
    assert.equal((await admin(a, `/admin/approvals/${id}/approve`, { by: 'alice' })).status, 200);
    const other = await connect(b, APP_KEY);
    clients.push(other);
    assert.equal(textOf(await call(other, 'lanegate__approval', { approval_id: id })), 'sent to ops@example.com');
    const records = [...(await a.auditRecords()), ...(await b.auditRecords())].filter((r) => r.run_id === runId);
    assert.deepEqual(
      records.map((r) => (r.kind === 'tool_call' ? `tool_call ${String(r.name)} ${String(r.decision)} ${String(r.rule)}` : `${String(r.kind)} ${String(r.endpoint)}`)),
      [
        'request chat',
        'tool_call web__write_file executed null',
        'tool_call web__write_file refused paths',
        'tool_call web__send-email held require_approval',
        'tool_call web__send-email executed null',
      ],
    );
    assert.deepEqual(records.slice(3).map((r) => r.approval_id), [id, id]);
    assert.deepEqual(new Set(records.map((r) => r.key_id)), new Set(['alpha']));
    // The admin API lists the run's tool calls too.
    const listed = (await (await fetch(`${a.url}/admin/audit?kind=tool_call&limit=100`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } })).json()) as {
      data: Array<Record<string, unknown>>;
    };
    const ids = new Set(listed.data.filter((r) => r.run_id === runId).map((r) => r.id));
    for (const r of (await a.auditRecords()).filter((x) => x.run_id === runId && x.kind === 'tool_call')) assert.ok(ids.has(r.id), `listed: ${String(r.id)}`);
  });
});
