import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { ADMIN_KEY, APP_KEY, defaultTestConfig, startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';

const PREFIX = 'ledger-test';
const run = promisify(execFile);

// 10 USD per million tokens; the budget is far out of reach: only its counter matters here.
const EXTRA = (redisUrl: string) => `
redis: { url: "${redisUrl}", key_prefix: ${PREFIX} }
pricing:
  mock-fast: { input: 10, output: 10, max_output_tokens: 50 }
budgets:
  rules:
    - { name: team-daily, scope: team, period: day, usd: 100 }
`;

interface Row {
  name: string;
  subject: string;
  spent: { usd: number; requests: number };
}

describe('usage ledger with the Redis sink', () => {
  let redis: TestRedis;
  let raw: Redis;
  let gw: TestGateway;
  before(async () => {
    redis = await startRedis();
    raw = new Redis(redis.url, { maxRetriesPerRequest: 1 });
    raw.on('error', () => {});
    // The helper's config with the trail in Redis Streams, as replicas sharing one Redis run it.
    const yaml = defaultTestConfig({}).replace(/^audit:\n {2}sink: file\n/m, 'audit:\n  sink: redis\n') + EXTRA(redis.url);
    assert.match(yaml, /sink: redis/);
    gw = await startTestGateway({ yaml });
  });
  after(async () => {
    await gw.close();
    raw.disconnect();
    await redis.stop();
  });

  const admin = { authorization: `Bearer ${ADMIN_KEY}` };
  const ask = async (content: string) => {
    const res = await fetch(`${gw.baseURL}/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${APP_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'fast', max_tokens: 5, messages: [{ role: 'user', content }] }),
    });
    assert.equal(res.status, 200);
    await res.text();
  };
  /** The cost of every request record in the stream, as the records say. */
  const streamCosts = async () => {
    await gw.gateway.audit.flush();
    const streams = await raw.keys(`${PREFIX}:v1:audit:{*}`);
    assert.ok(streams.length > 0, 'no audit stream in Redis');
    const entries = (await Promise.all(streams.map((key) => raw.xrange(key, '-', '+')))).flat();
    const costs: number[] = [];
    for (const [, fields] of entries) {
      const record = JSON.parse(fields[fields.indexOf('record') + 1]!) as { kind: string; cost?: { nano_usd: number } };
      if (record.kind === 'request' && record.cost) costs.push(record.cost.nano_usd);
    }
    return costs;
  };
  const teamRow = async () => {
    const rows = ((await (await fetch(`${gw.url}/admin/budgets`, { headers: admin })).json()) as { data: Row[] }).data;
    return rows.find((r) => r.name === 'team-daily' && r.subject !== '*')!;
  };

  it('usage report – totals are the records in the streams, not the empty local folder', async () => {
    for (const n of [1, 2, 3]) await ask(`question ${n}`);
    const costs = await streamCosts();
    assert.equal(costs.length, 3);
    const res = await fetch(`${gw.url}/admin/usage?group_by=team`, { headers: admin });
    assert.equal(res.status, 200);
    const report = (await res.json()) as { total: { requests: number; nano_usd: number } };
    assert.equal(report.total.requests, 3);
    assert.equal(report.total.nano_usd, costs.reduce((a, b) => a + b, 0));
    assert.ok(report.total.nano_usd > 0);
  });

  it('lanegate costs – reads the same ledger from Redis', async () => {
    const costs = await streamCosts();
    const { stdout } = await run(process.execPath, [path.resolve('bin/lanegate.mjs'), 'costs', '--config', gw.configFile, '--by', 'team', '--csv'], { timeout: 60_000 });
    const total = stdout.split('\n').find((l) => l.startsWith('total,'))!;
    assert.ok(total, stdout);
    const [, requests, , , usd] = total.split(',');
    assert.equal(Number(requests), costs.length);
    assert.equal(usd, (costs.reduce((a, b) => a + b, 0) / 1e9).toFixed(6));
  });

  it('budget counters lost from Redis are refused until rebuilt from the streams, which survived', async () => {
    await gw.gateway.audit.flush();
    const before = await teamRow();
    assert.ok(before.spent.requests >= 3, `spent ${JSON.stringify(before.spent)}`);
    // An eviction or a failover that lost the counters but kept the streams.
    const keys = await raw.keys(`${PREFIX}:v1:budget*`);
    assert.ok(keys.length > 0);
    await raw.del(...keys);
    const res = await fetch(`${gw.baseURL}/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${APP_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'fast', max_tokens: 5, messages: [{ role: 'user', content: 'during the loss' }] }),
    });
    assert.equal(res.status, 503);
    assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'budget_unavailable');
    // The streams hold the whole month: no --ledger and no waiver needed.
    const { stdout } = await run(process.execPath, [path.resolve('bin/lanegate.mjs'), 'budgets', 'rebuild', '--config', gw.configFile], { timeout: 60_000 });
    assert.match(stdout, /redis streams: \d+ requests/);
    const restored = await teamRow();
    assert.equal(restored.spent.requests, before.spent.requests, `spent ${JSON.stringify(restored.spent)}, was ${JSON.stringify(before.spent)}`);
    assert.equal(restored.spent.usd, before.spent.usd);
    await ask('after the rebuild');
    const after = await teamRow();
    assert.equal(after.spent.requests, before.spent.requests + 1, `spent ${JSON.stringify(after.spent)}, was ${JSON.stringify(before.spent)}`);
  });
});
