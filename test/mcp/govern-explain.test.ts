import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { ADMIN_KEY, startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { MCP_POLICIES, WITH_MCP_POLICIES } from './fixtures.js';

const root = path.resolve(import.meta.dirname, '../..');

describe('explain – a tool call', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startTestGateway({
      extra: `${WITH_MCP_POLICIES}\ntool_runs:\n  - { keys: [alpha], max_tool_calls: 5, rate_limits: [{ tools: ["*"], per_minute: 60 }] }\n`,
      files: { 'policies/lanes.yaml': MCP_POLICIES },
    });
  });
  after(async () => {
    await gw.close();
  });

  const explain = async (body: unknown) => {
    const res = await fetch(`${gw.url}/admin/policy/explain-tool`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };

  it('explain – names the rule that refuses, holds or lets a call run, and the budgets that apply, without counting it', async () => {
    const denied = await explain({ key_id: 'alpha', tool: 'Shell--Run', arguments: {} });
    assert.equal(denied.status, 200);
    assert.equal(denied.body.decision, 'refused');
    assert.equal(denied.body.rule, 'denied');
    assert.deepEqual(denied.body.tool, { name: 'Shell--Run', canonical: 'shell__run', catalogued_as: 'shell__run' });
    const path = await explain({ key_id: 'alpha', tool: 'files__write', arguments: { path: '../../etc/passwd' } });
    assert.equal(path.body.rule, 'paths');
    const held = await explain({ key_id: 'alpha', tool: 'mail__send', arguments: { to: 'a@example.com' } });
    assert.equal(held.body.decision, 'held');
    assert.equal(held.body.rule, 'require_approval');
    const runs = await explain({ key_id: 'alpha', tool: 'files__read', arguments: { path: 'a', q: 'CUST-123456 from jane@example.com' } });
    assert.equal(runs.body.decision, 'executed');
    assert.deepEqual((runs.body.lane as { name: string }).name, 'amber');
    assert.deepEqual(runs.body.arguments, { path: 'a', q: 'CUST-123456 from [EMAIL_1]' });
    assert.deepEqual(runs.body.run_budget, { max_tool_calls: 5, max_runtime_ms: null, max_concurrent: null, per_minute: 60 });
    const bad = await explain({ key_id: 'alpha' });
    assert.equal(bad.status, 400);
  });

  it('explain – lanegate explain --tool prints the same verdict from the config file', async () => {
    const { stdout } = await promisify(execFile)(process.execPath, ['bin/lanegate.mjs', 'explain', '--config', gw.configFile, '--key-id', 'alpha', '--tool', 'files__read', '--args', '{"path":"src/a.ts"}'], {
      cwd: root,
    });
    const out = JSON.parse(stdout) as Record<string, unknown>;
    assert.equal(out.decision, 'executed');
    assert.equal((out.lane as { name: string }).name, 'green');
    assert.deepEqual(out.run_budget, { max_tool_calls: 5, max_runtime_ms: null, max_concurrent: null, per_minute: 60 });
  });
});
