import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { periodEnd, periodId } from '../../src/budget/periods.js';
import { startFakeOpenAI, type FakeOpenAI } from '../helpers/fake-openai.js';
import { ADMIN_KEY, APP_KEY, OTHER_KEY, startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';

describe('periods', () => {
  it('periods – calendar days and months follow the configured time zone', () => {
    const t = Date.parse('2026-03-31T22:30:00Z'); // already April 1st in Berlin (UTC+2)
    assert.equal(periodId('day', t, 'UTC'), 'd:2026-03-31');
    assert.equal(periodId('day', t, 'Europe/Berlin'), 'd:2026-04-01');
    assert.equal(periodId('month', t, 'Europe/Berlin'), 'M:2026-04');
    assert.equal(new Date(periodEnd('day', t, 'UTC')).toISOString(), '2026-04-01T00:00:00.000Z');
    assert.equal(new Date(periodEnd('day', t, 'Europe/Berlin')).toISOString(), '2026-04-01T22:00:00.000Z');
    assert.equal(new Date(periodEnd('month', t, 'UTC')).toISOString(), '2026-04-01T00:00:00.000Z');
    // day rollover: one millisecond apart, two counters
    const midnight = Date.parse('2026-11-25T00:00:00Z');
    assert.notEqual(periodId('day', midnight - 1, 'UTC'), periodId('day', midnight, 'UTC'));
  });
});

const LIMITS = (redisUrl: string) => `
redis: { url: "${redisUrl}", key_prefix: limits-test }
pricing:
  mock-fast: { input: 10, output: 10, max_output_tokens: 50 }
  mock-slow: { input: 10, output: 10, max_output_tokens: 400 }
  gpt-4o-mini: { input: 10, output: 10, max_output_tokens: 50 }
budgets:
  stream_slice_tokens: 4
  rules:
    # 80 tokens at these prices; the runtime-limited stream of the first test is charged for what it delivered
    - { name: alpha-stream, scope: key, match: [alpha], period: day, usd: 0.0008 }
    - { name: beta-open, scope: key, match: [beta], period: day, tokens: 1000000, on_store_error: fail_open }
run_limits:
  - { keys: [beta], max_tools: 1, max_output_tokens: 3, on_max_output_tokens: clamp, max_concurrent: 1 }
  - { routes: [slow-stream], max_runtime_ms: 300 }
`;

describe('stream budgets and run limits (Redis)', () => {
  let redis: TestRedis;
  let upstream: FakeOpenAI;
  let gw: TestGateway;
  before(async () => {
    redis = await startRedis();
    upstream = await startFakeOpenAI();
    gw = await startTestGateway({ openaiUrl: upstream.url, extra: LIMITS(redis.url) });
  });
  after(async () => {
    await gw.close();
    await upstream.close();
    await redis.stop();
  });

  const post = (body: object, key = APP_KEY) =>
    fetch(`${gw.baseURL}/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
  const budget = async (name: string) => {
    const res = await fetch(`${gw.url}/admin/budgets`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } });
    return ((await res.json()) as { data: Array<{ name: string; spent: { tokens: number; usd: number }; reserved: { usd: number } }> }).data.find((r) => r.name === name)!;
  };
  const untilSettled = async (name: string) => {
    const deadline = Date.now() + 5000;
    let row = await budget(name);
    while (row.reserved.usd !== 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 25));
      row = await budget(name);
    }
    return row;
  };

  it('run limits – max runtime ends a long stream with an error event', async () => {
    const res = await post({ model: 'slow-stream', stream: true, messages: [{ role: 'user', content: 'a b c d e f g h i j k l' }] });
    const text = await res.text();
    assert.match(text, /"code":"request_timeout"/);
    assert.ok(text.trimEnd().endsWith('data: [DONE]'));
  });

  it('streams – settlement matches the usage the provider reported', async () => {
    const before = await untilSettled('alpha-stream');
    const stream = await gw
      .client()
      .chat.completions.create({ model: 'fast', stream: true, stream_options: { include_usage: true }, max_tokens: 10, messages: [{ role: 'user', content: 'a b c' }] });
    let usage;
    for await (const chunk of stream) if (chunk.usage) usage = chunk.usage;
    const row = await untilSettled('alpha-stream');
    assert.equal(row.spent.tokens - before.spent.tokens, usage!.total_tokens);
    assert.equal(row.reserved.usd, 0);
  });

  it('streams – a stream that outgrows the budget ends with one budget_exceeded error event', async () => {
    // the prompt fits what is left; the echoed answer does not
    const long = Array.from({ length: 12 }, (_, i) => `w${i}`).join(' ');
    const res = await post({ model: 'fast', stream: true, messages: [{ role: 'user', content: long }] });
    assert.equal(res.status, 200, 'a stream needs only its first slice up front');
    const text = await res.text();
    const errors = text.split('\n\n').filter((e) => e.includes('"error"'));
    assert.equal(errors.length, 1);
    assert.match(errors[0]!, /budget_exceeded/);
    assert.ok(text.trimEnd().endsWith('data: [DONE]'));
    const row = await untilSettled('alpha-stream');
    assert.ok(row.spent.usd <= 0.0008 + 1e-12, `spent ${row.spent.usd}`);
  });

  it('run limits – too many tools are refused, max_tokens is clamped', async () => {
    const tool = (name: string) => ({ type: 'function', function: { name, parameters: { type: 'object' } } });
    const many = await post({ model: 'fast', tools: [tool('a'), tool('b')], messages: [{ role: 'user', content: 'x' }] }, OTHER_KEY);
    assert.equal(many.status, 400);
    assert.match(((await many.json()) as { error: { message: string } }).error.message, /at most 1/);
    const clamped = await post({ model: 'fast', max_tokens: 100, messages: [{ role: 'user', content: 'one two three four five six' }] }, OTHER_KEY);
    const body = (await clamped.json()) as { choices: Array<{ message: { content: string }; finish_reason: string }> };
    assert.equal(body.choices[0]!.message.content, 'Echo: one two', 'the mock stops at the clamped 3 tokens');
    assert.equal(body.choices[0]!.finish_reason, 'length');
  });

  it('store down – a USD budget fails closed (503, nothing upstream); a fail_open one serves', async () => {
    await redis.kill();
    try {
      const calls = upstream.calls.length;
      const closed = await post({ model: 'gpt-fake', max_tokens: 1, messages: [{ role: 'user', content: 'x' }] });
      assert.equal(closed.status, 503);
      assert.equal(upstream.calls.length, calls);
      const open = await post({ model: 'fast', max_tokens: 1, messages: [{ role: 'user', content: 'x' }] }, OTHER_KEY);
      assert.equal(open.status, 200);
      const metrics = await (await fetch(`${gw.url}/metrics`)).text();
      assert.match(metrics, /lanegate_budget_store_errors_total\{mode="fail_open"\} [1-9]/);
      assert.match(metrics, /lanegate_budget_store_errors_total\{mode="fail_closed"\} [1-9]/);
    } finally {
      await redis.restart();
    }
  });
});
