import assert from 'node:assert/strict';
import { once } from 'node:events';
import { after, before, describe, it } from 'node:test';
import { createMemoryApprovalStore, createRedisApprovalStore, newApprovalId, type Approval, type ApprovalStore } from '../../src/policy/approvals.js';
import { createMemoryToolRunStore, createRedisToolRunStore, toolRunLimits, type ToolRunStore } from '../../src/mcp/tool-runs.js';
import { createRedisClient, type RedisStore } from '../../src/stores/redis.js';
import { createLogger } from '../../src/telemetry/logger.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';

function mcpApproval(expiresInMs: number): Approval {
  const now = Date.now();
  return {
    id: newApprovalId(), status: 'pending', created_at: new Date(now).toISOString(), decided_at: null, decided_by: null, reason: null,
    request_id: 'req_1', key_id: 'alpha', app: 'a', team: 't', lane: 'green', model: '', tool: 'mail__send', tool_call_id: 'tc_1', arguments: '{"to":"a@example.com"}',
    kind: 'mcp_tool_call',
    mcp: { server: 'mail', tool: 'send', canonical: 'mail__send', run_id: null, expires_at: new Date(now + expiresInMs).toISOString() },
  };
}

describe('MCP governance stores', () => {
  let redis: TestRedis;
  // Two clients: two replicas over one Redis.
  const clients: RedisStore[] = [];
  const client = (i: number) => clients[i]!;
  before(async () => {
    redis = await startRedis();
    for (let i = 0; i < 2; i++) {
      const c = createRedisClient({ url: redis.url, keyPrefix: 'mcp-stores', logger: createLogger({ level: 'silent' }) });
      clients.push(c);
      if (!c.isReady()) await once(c.client, 'ready');
    }
  });
  after(async () => {
    for (const c of clients) await c.close();
    await redis.stop();
  });

  const approvalStores = (): Array<[string, () => [ApprovalStore, ApprovalStore]]> => [
    ['memory', () => { const s = createMemoryApprovalStore(); return [s, s]; }],
    ['redis', () => [createRedisApprovalStore(client(0)), createRedisApprovalStore(client(1))]],
  ];

  for (const [name, make] of approvalStores()) {
    it(`approvals (${name}) – of many concurrent claims on an approved call exactly one wins; later ones see it running, then done with its result`, async () => {
      const [one, two] = make();
      const a = mcpApproval(60_000);
      await one.create(a);
      assert.deepEqual((await two.claim(a.id, new Date())).ok, false);
      assert.equal(((await two.claim(a.id, new Date())) as { reason: string }).reason, 'pending');
      await one.decide(a.id, 'approved', 'alice', null);
      const claims = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? one : two).claim(a.id, new Date())));
      assert.equal(claims.filter((c) => c.ok).length, 1);
      assert.ok(claims.filter((c) => !c.ok).every((c) => !c.ok && c.reason === 'running'));
      await two.finish(a.id, { result: '{"content":[]}', error: null });
      const after = await one.claim(a.id, new Date());
      assert.equal(!after.ok && after.reason, 'done');
      assert.equal(after.approval?.execution?.result, '{"content":[]}', 'an empty list survives the store (JSON text, not re-encoded)');
    });

    it(`approvals (${name}) – rejected, expired and late-approved calls are never claimed`, async () => {
      const [one, two] = make();
      const rejected = mcpApproval(60_000);
      await one.create(rejected);
      await two.decide(rejected.id, 'rejected', 'bob', 'no');
      assert.equal(((await one.claim(rejected.id, new Date())) as { reason: string }).reason, 'rejected');
      const late = mcpApproval(-1);
      await one.create(late);
      assert.equal(((await two.claim(late.id, new Date())) as { reason: string }).reason, 'expired');
      await one.decide(late.id, 'approved', 'carol', null);
      assert.equal(((await two.claim(late.id, new Date())) as { reason: string }).reason, 'expired');
    });
  }

  const runStores = (): Array<[string, () => [ToolRunStore, ToolRunStore]]> => [
    ['memory', () => { const s = createMemoryToolRunStore(); return [s, s]; }],
    ['redis', () => [createRedisToolRunStore(client(0)), createRedisToolRunStore(client(1))]],
  ];
  for (const [name, make] of runStores()) {
    it(`tool runs (${name}) – two replicas never let a run past its call budget, per-minute limits count per key and tool, runtime ends the run`, async () => {
      const [one, two] = make();
      const run = `alpha:run-${name}`;
      const limits = { maxToolCalls: 5 };
      const now = Date.now();
      const verdicts = await Promise.all(Array.from({ length: 12 }, (_, i) => (i % 2 ? one : two).acquire({ run, rate: 'alpha:x', limits, now })));
      assert.equal(verdicts.filter((v) => v.ok).length, 5);
      assert.ok(verdicts.every((v) => v.ok || v.limit === 'max_tool_calls'));

      const rate = { perMinute: 2 };
      const minute = Math.floor(now / 60_000) * 60_000;
      assert.equal((await one.acquire({ run: `${run}-r`, rate: `alpha:files__write-${name}`, limits: rate, now: minute })).ok, true);
      assert.equal((await two.acquire({ run: `${run}-r2`, rate: `alpha:files__write-${name}`, limits: rate, now: minute + 1 })).ok, true);
      const third = await one.acquire({ run: `${run}-r3`, rate: `alpha:files__write-${name}`, limits: rate, now: minute + 2 });
      assert.equal(!third.ok && third.limit, 'per_minute');
      assert.equal((await one.acquire({ run: `${run}-r4`, rate: `alpha:files__write-${name}`, limits: rate, now: minute + 60_000 })).ok, true, 'a new minute');

      const timed = { maxRuntimeMs: 1_000 };
      assert.equal((await one.acquire({ run: `${run}-t`, rate: 'alpha:y', limits: timed, now })).ok, true);
      assert.equal((await two.acquire({ run: `${run}-t`, rate: 'alpha:y', limits: timed, now: now + 1_000 })).ok, true);
      const late = await two.acquire({ run: `${run}-t`, rate: 'alpha:y', limits: timed, now: now + 1_001 });
      assert.equal(!late.ok && late.limit, 'max_runtime_ms');
    });
  }

  it('tool runs – the strictest of the rules that apply wins, tools matched in canonical form', () => {
    const rules = [
      { max_tool_calls: 10, rate_limits: [{ tools: ['files__write'], per_minute: 30 }] },
      { keys: ['alpha'], max_tool_calls: 4, max_concurrent: 2, rate_limits: [{ tools: ['*'], per_minute: 50 }] },
      { lanes: ['red'], max_tool_calls: 1, rate_limits: [] },
    ];
    assert.deepEqual(toolRunLimits(rules, { keyId: 'alpha', lane: 'green', name: 'Files--Write' }), { maxToolCalls: 4, maxRuntimeMs: undefined, maxConcurrent: 2, perMinute: 30 });
    assert.deepEqual(toolRunLimits(rules, { keyId: 'beta', lane: 'red', name: 'files__read' }), { maxToolCalls: 1, maxRuntimeMs: undefined, maxConcurrent: undefined });
    assert.equal(toolRunLimits([], { keyId: 'beta', lane: 'red', name: 'x' }), undefined);
  });
});
