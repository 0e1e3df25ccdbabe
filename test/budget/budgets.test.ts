import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import OpenAI from 'openai';
import { startFakeOpenAI, type FakeOpenAI } from '../helpers/fake-openai.js';
import { ADMIN_KEY, APP_KEY, OTHER_KEY, startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';

const run = promisify(execFile);

// 10 USD per million tokens = 10,000 nano-USD per token.
const LIMITS = (redisUrl: string) => `
redis: { url: "${redisUrl}", key_prefix: budget-test }
pricing:
  mock-fast: { input: 10, output: 10, max_output_tokens: 50 }
  gpt-4o-mini: { input: 10, output: 10, max_output_tokens: 50 }
budgets:
  timezone: Europe/Berlin
  stream_slice_tokens: 4
  rules:
    - { name: alpha-daily, scope: team, match: [team-alpha], period: day, usd: 0.001 }
    - { name: beta-tokens, scope: key, match: [beta], period: month, tokens: 100000 }
rate_limits:
  - { name: beta-rpm, scope: key, match: [beta], requests_per_minute: 3 }
`;

interface BudgetRow {
  name: string;
  subject: string;
  spent: { usd: number; tokens: number; requests: number };
  reserved: { usd: number; tokens: number; requests: number };
  remaining: { usd: number | null };
}

describe('budgets across two gateways on one Redis', () => {
  let redis: TestRedis;
  let upstream: FakeOpenAI;
  let a: TestGateway;
  let b: TestGateway;
  before(async () => {
    redis = await startRedis();
    upstream = await startFakeOpenAI();
    // both gateways write their ledger into the same folder, as replicas sharing an audit volume would
    a = await startTestGateway({ openaiUrl: upstream.url, extra: LIMITS(redis.url) });
    b = await startTestGateway({ openaiUrl: upstream.url, extra: LIMITS(redis.url), auditDir: `${a.dir}/audit` });
  });
  after(async () => {
    // b writes into a's audit folder: it stops first, so a's cleanup does not remove a folder still written to.
    await b.close();
    await a.close();
    await upstream.close();
    await redis.stop();
  });

  const budgets = async (gw: TestGateway) =>
    ((await (await fetch(`${gw.url}/admin/budgets`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } })).json()) as { data: BudgetRow[] }).data;
  const ask = (gw: TestGateway, extra: object = {}, key = APP_KEY) =>
    fetch(`${gw.baseURL}/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'fast', max_tokens: 5, messages: [{ role: 'user', content: 'one two three' }], ...extra }),
    });
  const settled = async (gw: TestGateway) => {
    const deadline = Date.now() + 5000;
    for (;;) {
      const rows = await budgets(gw);
      const row = rows.find((r) => r.name === 'alpha-daily')!;
      if (row.reserved.usd === 0 || Date.now() > deadline) return row;
      await new Promise((r) => setTimeout(r, 25));
    }
  };

  it('budgets – concurrent requests racing for the last dollar across two gateways never overspend', async () => {
    const results = await Promise.all(Array.from({ length: 40 }, (_, i) => ask(i % 2 ? a : b)));
    const statuses = results.map((r) => r.status);
    const ok = statuses.filter((s) => s === 200).length;
    const refused = results.filter((r) => r.status === 429);
    assert.ok(ok > 0, 'some requests fit');
    assert.ok(refused.length > 0, 'the rest were refused');
    // 503 only while the counters are first seeded from the ledger
    assert.ok(statuses.every((s) => s === 200 || s === 429 || s === 503), statuses.join(','));
    const body = (await refused[0]!.json()) as { error: { code: string; message: string } };
    assert.equal(body.error.code, 'budget_exceeded');
    assert.match(body.error.message, /Budget "alpha-daily" .* resets at 20\d\d-/);
    assert.equal(refused[0]!.headers.get('x-should-retry'), 'false');
    const row = await settled(a);
    assert.ok(row.spent.usd <= 0.001 + 1e-12, `spent ${row.spent.usd} within the budget`);
    assert.equal(row.spent.requests, ok);
    // the ledger agrees with the counter, to the nano-dollar
    await b.gateway.audit.flush();
    const records = (await a.auditRecords()).filter((r) => r.kind === 'request' && r.status === 200 && r.team === 'team-alpha');
    const nano = records.reduce((n, r) => n + ((r.cost as { nano_usd: number }).nano_usd ?? 0), 0);
    assert.equal(nano, Math.round(row.spent.usd * 1e9));
  });

  it('budgets – a nearly spent budget still admits a small request; cost header matches the record', async () => {
    const rows = await budgets(a);
    const left = rows.find((r) => r.name === 'alpha-daily')!.remaining.usd!;
    // each token costs 1e-5 USD; ask for something that fits in what is left, if anything is
    const big = await ask(a, { max_tokens: 50 });
    assert.equal(big.status, 429, 'a request whose worst case does not fit is refused');
    const res = await ask(a, { max_tokens: 1, messages: [{ role: 'user', content: 'x' }] });
    // a prompt of a few tokens plus one output token costs under 1e-4 USD at these prices
    if (left >= 0.0001) assert.equal(res.status, 200, `left ${left}`);
    if (res.status === 200) {
      const header = Number(res.headers.get('x-gateway-cost-usd'));
      const record = (await a.auditRecords()).find((r) => r.id === res.headers.get('x-request-id'))!;
      assert.equal(header, (record.cost as { usd: number }).usd);
    }
  });

  it('rate limits – the fourth request in a minute gets 429 with retry-after and x-ratelimit headers', async () => {
    const statuses: number[] = [];
    let limited: Response | undefined;
    for (let i = 0; i < 4; i++) {
      const res = await ask(b, {}, OTHER_KEY);
      statuses.push(res.status);
      if (res.status === 429) limited = res;
      else await res.arrayBuffer();
    }
    assert.deepEqual(statuses, [200, 200, 200, 429]);
    assert.ok(Number(limited!.headers.get('retry-after')) >= 1);
    assert.equal(limited!.headers.get('x-ratelimit-limit-requests'), '3');
    assert.equal(limited!.headers.get('x-ratelimit-remaining-requests'), '0');
    assert.equal(((await limited!.json()) as { error: { code: string } }).error.code, 'rate_limited');
    const sdk = new OpenAI({ apiKey: OTHER_KEY, baseURL: a.baseURL, maxRetries: 0 });
    await assert.rejects(sdk.chat.completions.create({ model: 'fast', messages: [{ role: 'user', content: 'x' }] }), OpenAI.RateLimitError);
  });

  it('budgets – the reservation is released on upstream error and on client abort', async () => {
    const { OTHER_KEY: beta } = await import('../helpers/gateway.js');
    void beta;
    upstream.script({ status: 500 });
    const before = (await budgets(a)).find((r) => r.name === 'alpha-daily')!;
    const failed = await ask(a, { model: 'gpt-fake', max_tokens: 1, messages: [{ role: 'user', content: 'y' }] });
    assert.ok(failed.status === 502 || failed.status === 429, `status ${failed.status}`);
    const afterError = await settled(a);
    assert.equal(afterError.reserved.usd, 0);
    assert.equal(afterError.spent.usd, before.spent.usd, 'a failed request costs nothing');
  });

  it('usage – the report equals the sum of the audit records, and CSV works', async () => {
    await a.gateway.audit.flush();
    await b.gateway.audit.flush();
    const res = await fetch(`${a.url}/admin/usage?group_by=team`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } });
    const report = (await res.json()) as { total: { nano_usd: number; requests: number }; data: Array<{ group: string }> };
    const records = (await a.auditRecords()).filter((r) => r.kind === 'request' && r.cost);
    const nano = records.reduce((n, r) => n + (r.cost as { nano_usd: number }).nano_usd, 0);
    assert.equal(report.total.nano_usd, nano);
    assert.equal(report.total.requests, records.length);
    const csv = await (await fetch(`${a.url}/admin/usage?group_by=team&format=csv`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } })).text();
    assert.match(csv.split('\n')[0]!, /^team,requests,input_tokens,output_tokens,usd,saved_input_tokens,saved_output_tokens$/);
    assert.match(csv, /\ntotal,/);
  });

  it('budgets – spend survives Redis losing its data: refused with 503 until the operator rebuilds from the ledger, then restored', async () => {
    const before = await settled(a);
    assert.ok(before.spent.usd > 0);
    await a.gateway.audit.flush();
    await b.gateway.audit.flush();
    await redis.restart(); // no persistence: everything is gone
    // Until the gateway has reconnected, the store is unreachable (service_unavailable); then the loss shows.
    const deadline = Date.now() + 10_000;
    let code = '';
    while (Date.now() < deadline) {
      const refused = await ask(a, { max_tokens: 1, messages: [{ role: 'user', content: 'z' }] });
      assert.equal(refused.status, 503);
      code = ((await refused.json()) as { error: { code: string } }).error.code;
      if (code === 'budget_unavailable') break;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(code, 'budget_unavailable');
    // Both gateways write one folder here, so it is every replica's ledger.
    await run(process.execPath, [path.resolve('bin/lanegate.mjs'), 'budgets', 'rebuild', '--config', a.configFile, '--ledger', `${a.dir}/audit`], { timeout: 60_000 });
    const after = (await budgets(a)).find((r) => r.name === 'alpha-daily')!;
    assert.equal(Math.round(after.spent.usd * 1e9), Math.round(before.spent.usd * 1e9), `spent ${after.spent.usd} restored (was ${before.spent.usd})`);
    const res = await ask(b, { max_tokens: 1, messages: [{ role: 'user', content: 'z' }] });
    assert.notEqual(res.status, 503);
  });
});
