import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import path from 'node:path';
import { verifyDir } from '../../src/audit/read/verify.js';
import { APP_KEY, startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { countingExecutor, govern, MCP_POLICIES, run, WITH_MCP_POLICIES } from './fixtures.js';

describe('MCP tool-call governance (lane rules, detectors, run budgets, audit)', () => {
  let gw: TestGateway;
  const upstream = countingExecutor();
  before(async () => {
    gw = await startTestGateway({
      extra: `${WITH_MCP_POLICIES}
tool_runs:
  - keys: [alpha]
    max_tool_calls: 3
    rate_limits: [{ tools: [files__write], per_minute: 100 }]
  - keys: [beta]
    max_concurrent: 1
`,
      files: { 'policies/lanes.yaml': MCP_POLICIES },
    });
  });
  after(async () => {
    await gw.close();
  });

  it('govern – a denied tool is refused under every spelling of its name, naming the rule, and never runs', async () => {
    for (const name of ['shell__run', 'Shell__Run', 'SHELL--RUN', 'shell__r\u200bun']) {
      const d = await govern(gw.gateway, { name, args: {}, runId: 'deny-run' });
      assert.equal(d.kind, 'refuse', name);
      assert.equal(d.kind === 'refuse' && d.rule, 'denied');
      assert.match(d.kind === 'refuse' ? d.message : '', /not allowed in lane green/);
    }
    // Not on amber's allow list: refused there, whatever the policy files' catalogue holds (servers catalogue their own tools).
    const unlisted = await govern(gw.gateway, { name: 'files__delete', lane: 'amber', args: {}, runId: 'deny-run' });
    assert.equal(unlisted.kind === 'refuse' && unlisted.rule, 'denied');
    assert.equal(upstream.calls.length, 0);
  });

  it('govern – recipients outside the allowed domains, or too many of them, are refused', async () => {
    const outside = await govern(gw.gateway, { name: 'mail__send', args: { to: '"ceo@example.com" <x@evil.test>' }, runId: 'mail-run' });
    assert.equal(outside.kind === 'refuse' && outside.rule, 'recipients');
    assert.match(outside.kind === 'refuse' ? outside.message : '', /evil\.test/);
    const many = await govern(gw.gateway, { name: 'mail__send', args: { to: ['a@example.com', 'b@example.com'], cc: 'c@example.com' }, runId: 'mail-run' });
    assert.equal(many.kind === 'refuse' && many.rule, 'recipients');
    assert.match(many.kind === 'refuse' ? many.message : '', /3 recipients.*at most 2/);
  });

  it('govern – paths must stay inside the roots, ".." escapes included, and a call may change at most max_files', async () => {
    for (const path of ['/etc/passwd', '../../etc/passwd', '/srv/repo/../../etc/shadow', '/srv/repository/x', '..\\..\\etc\\passwd', 'file:///etc/passwd', '~/.ssh/id_rsa']) {
      const d = await govern(gw.gateway, { name: 'files__write', args: { path, content: 'x' }, runId: `paths-${path}` });
      assert.equal(d.kind, 'refuse', path);
      assert.equal(d.kind === 'refuse' && d.rule, 'paths', path);
    }
    const tooMany = await govern(gw.gateway, { name: 'files__write', args: { paths: ['a.txt', 'b.txt', 'c.txt'] }, runId: 'paths-many' });
    assert.equal(tooMany.kind === 'refuse' && tooMany.rule, 'paths');
    assert.match(tooMany.kind === 'refuse' ? tooMany.message : '', /3 files.*at most 2/);
    for (const path of ['src/index.ts', '/srv/repo/a/../b.txt', '/tmp/scratch/out.txt', '/srv/repo']) {
      const d = await govern(gw.gateway, { name: 'files__write', args: { path, content: 'x' }, runId: `paths-ok-${path}` });
      assert.equal(d.kind, 'execute', path);
      await run(d, upstream.execute, 'files', 'write');
    }
  });

  it('govern – detectors on arguments block (nothing kept) or escalate the lane, whose rules then apply', async () => {
    const before = upstream.calls.length;
    const secret = 'sk-proj-abcdefghijklmnopqrstuvwxyz0123456789ABCD';
    const blocked = await govern(gw.gateway, { name: 'files__read', args: { path: 'a.txt', note: secret }, runId: 'det-run' });
    assert.equal(blocked.kind === 'refuse' && blocked.rule, 'detector:api_key');
    assert.match(blocked.kind === 'refuse' ? blocked.message : '', /arguments\.note/);
    // A customer id moves the call to amber, which does not allow files__write...
    const escalated = await govern(gw.gateway, { name: 'files__write', args: { path: 'a.txt', content: 'for CUST-123456' }, runId: 'det-run' });
    assert.equal(escalated.kind === 'refuse' && escalated.rule, 'denied');
    assert.match(escalated.kind === 'refuse' ? escalated.message : '', /lane amber/);
    // ...and redacts it from a call amber does allow, before the server sees it.
    const redacted = await govern(gw.gateway, { name: 'files__read', args: { path: 'a.txt', query: 'CUST-123456 mail from jane@example.com' }, runId: 'det-run-2' });
    assert.equal(redacted.kind, 'execute');
    assert.equal(redacted.kind === 'execute' && redacted.args.query, 'CUST-123456 mail from [EMAIL_1]');
    await run(redacted, upstream.execute);
    assert.equal(upstream.calls.length, before + 1);
    const records = (await gw.auditRecords()).filter((r) => r.kind === 'tool_call');
    const blockedRecord = records.find((r) => r.rule === 'detector:api_key')!;
    assert.equal(blockedRecord.arguments, null, 'blocked data is not kept, whatever the lane says');
    assert.ok(!JSON.stringify(records).includes(secret));
  });

  it('govern – the lane redacts the result before the agent sees it, and a blocking detector withholds it', async () => {
    const d = await govern(gw.gateway, { name: 'files__read', lane: 'amber', args: { path: 'contacts.txt' }, runId: 'result-run' });
    const result = await run(d, upstream.execute, 'files', 'read', {
      content: [{ type: 'text', text: 'Call Jane at jane.doe@corp.example or +1 415 555 0100' }],
      structuredContent: { owner: 'jane.doe@corp.example' },
    });
    const text = (result.content[0] as { text: string }).text;
    assert.equal(text, 'Call Jane at [EMAIL_1] or [PHONE_1]');
    assert.deepEqual(result.structuredContent, { owner: '[EMAIL_1]' });
    const leaked = await govern(gw.gateway, { name: 'files__read', lane: 'amber', args: { path: '.env' }, runId: 'result-run' });
    const withheld = await run(leaked, upstream.execute, 'files', 'read', { content: [{ type: 'text', text: 'OPENAI_API_KEY=sk-proj-abcdefghijklmnopqrstuvwxyz0123456789ABCD' }] });
    assert.equal(withheld.isError, true);
    assert.match((withheld.content[0] as { text: string }).text, /withheld.*api_key/);
    const records = (await gw.auditRecords()).filter((r) => r.kind === 'tool_call' && r.run_id === 'result-run');
    assert.equal(records.length, 2);
    assert.ok(!JSON.stringify(records).includes('jane.doe@corp.example'), 'amber keeps redacted bodies');
    assert.ok(!JSON.stringify(records).includes('sk-proj-'));
  });

  it('govern – a run that exceeds its tool-call budget is refused, naming the limit; another run is not', async () => {
    const runId = 'budget-run';
    for (let i = 0; i < 3; i++) await run(await govern(gw.gateway, { name: 'files__read', args: { path: 'a' }, runId }), upstream.execute);
    const over = await govern(gw.gateway, { name: 'files__read', args: { path: 'a' }, runId });
    assert.equal(over.kind, 'refuse');
    assert.equal(over.kind === 'refuse' && over.rule, 'tool_runs.max_tool_calls');
    assert.match(over.kind === 'refuse' ? over.message : '', /3 tool calls.*allows 3/);
    const other = await govern(gw.gateway, { name: 'files__read', args: { path: 'a' }, runId: 'budget-run-2' });
    assert.equal(other.kind, 'execute');
    await run(other, upstream.execute);
  });

  it('govern – concurrency per run: a second call in flight is refused until the first completes', async () => {
    const first = await govern(gw.gateway, { name: 'files__read', key: 'beta', args: { path: 'a' }, runId: 'conc' });
    assert.equal(first.kind, 'execute');
    const second = await govern(gw.gateway, { name: 'files__read', key: 'beta', args: { path: 'a' }, runId: 'conc' });
    assert.equal(second.kind === 'refuse' && second.rule, 'tool_runs.max_concurrent');
    await run(first, upstream.execute);
    const third = await govern(gw.gateway, { name: 'files__read', key: 'beta', args: { path: 'a' }, runId: 'conc' });
    assert.equal(third.kind, 'execute');
    await run(third, upstream.execute);
  });

  it('audit – tool calls and the LLM requests of one run share its run id, in the hash-chained lane trail', async () => {
    const runId = 'linked-run-1';
    const res = await fetch(`${gw.baseURL}/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${APP_KEY}`, 'content-type': 'application/json', 'x-gateway-run-id': runId },
      body: JSON.stringify({ model: 'fast', messages: [{ role: 'user', content: 'plan the edit' }] }),
    });
    assert.equal(res.status, 200);
    await res.arrayBuffer();
    const failing = await govern(gw.gateway, { name: 'files__write', args: { path: 'src/a.ts', content: 'x' }, runId });
    assert.equal(failing.kind, 'execute');
    const failed: CallToolResult = failing.kind === 'execute' ? await failing.complete({ error: new Error('upstream timed out after 5000 ms'), latencyMs: 5000 }) : { content: [] };
    assert.equal(failed.isError, true);
    await run(await govern(gw.gateway, { name: 'files__read', args: { path: 'src/a.ts' }, runId }), upstream.execute);
    await govern(gw.gateway, { name: 'shell__run', args: { cmd: 'rm -rf /' }, runId });

    const records = await gw.auditRecords();
    const ofRun = records.filter((r) => r.run_id === runId);
    assert.deepEqual(ofRun.map((r) => [r.kind, r.kind === 'tool_call' ? `${r.name}:${r.decision}:${r.rule}` : r.endpoint]), [
      ['request', 'chat'],
      ['tool_call', 'files__write:failed:null'],
      ['tool_call', 'files__read:executed:null'],
      ['tool_call', 'shell__run:refused:denied'],
    ]);
    const write = ofRun[1]!;
    assert.equal(write.server, 'files');
    assert.equal(write.tool, 'write');
    assert.equal(write.canonical, 'files__write');
    assert.equal(write.error, 'upstream timed out after 5000 ms');
    assert.equal(write.latency_ms, 5000);
    assert.equal(write.arguments, JSON.stringify({ path: 'src/a.ts', content: 'x' }), 'green keeps full bodies');
    const read = ofRun[2]!;
    assert.match(String(read.result), /ran files\/read/);
    // One chain: each record's prev is the hash of the one before it in the lane's file.
    const green = records.filter((r) => (r.kind === 'request' ? (r.lane as { name: string } | null)?.name : (r.lane as { name?: string } | undefined)?.name) === 'green');
    for (let i = 1; i < green.length; i++) assert.equal(green[i]!.prev, green[i - 1]!.hash);
    assert.ok(ofRun.every((r) => typeof r.hash === 'string'));
    const report = await verifyDir(path.join(gw.dir, 'audit'));
    assert.equal(report.ok, true, JSON.stringify(report.chains));
    assert.ok(report.chains.some((c) => c.chain === 'green' && c.records >= 4));
  });
});
