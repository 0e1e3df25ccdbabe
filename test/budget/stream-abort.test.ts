// Streams a client aborts before the provider sent its usage: the gateway
// charges the prompt and the text it delivered, counted with tiktoken, and
// every place money shows (budget, rate limit, ledger, `lanegate costs`,
// metrics, audit) shows that same figure. On the in-memory store and on Redis.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { countMessageTokens, countTextTokens } from '../../src/providers/tokens.js';
import { startFakeOpenAI, type FakeOpenAI } from '../helpers/fake-openai.js';
import { ADMIN_KEY, startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';

const run = promisify(execFile);

// Input and output priced apart, so a token counted on the wrong side shows: nano-USD per token = USD per million × 1000.
const INPUT_NANO = 10_000;
const OUTPUT_NANO = 30_000;
const LIMITS = `
pricing:
  gpt-4o-mini: { input: 10, output: 30, max_output_tokens: 200 }
budgets:
  rules:
    - { name: alpha-day, scope: key, match: [alpha], period: day, usd: 5 }
rate_limits:
  - { name: alpha-rate, scope: key, match: [alpha], requests_per_minute: 1000, tokens_per_minute: 1000000 }
`;

interface Expected {
  id: string;
  prompt: number;
  completion: number;
  nano: number;
}

const admin = (gw: TestGateway, route: string) => fetch(`${gw.url}${route}`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } });

async function waitFor<T>(what: string, read: () => Promise<T>, done: (value: T) => boolean): Promise<T> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const value = await read();
    if (done(value)) return value;
    if (Date.now() > deadline) assert.fail(`${what}: still ${JSON.stringify(value)}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

function metricSum(text: string, name: string, labels: Record<string, string>): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue;
    if (!Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) continue;
    sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

for (const kind of ['memory', 'redis'] as const) {
  describe(`aborted streams are charged for what they delivered (${kind} store)`, () => {
    let redis: TestRedis | undefined;
    let upstream: FakeOpenAI;
    let gw: TestGateway;
    before(async () => {
      if (kind === 'redis') redis = await startRedis();
      upstream = await startFakeOpenAI();
      const store = redis ? `redis: { url: "${redis.url}", key_prefix: abort-test }\n` : '';
      gw = await startTestGateway({ openaiUrl: upstream.url, extra: store + LIMITS });
    });
    after(async () => {
      await gw.close();
      await upstream.close();
      await redis?.stop();
    });

    it('stream abort – budget, rate limit, ledger, lanegate costs, metrics and audit all show the tiktoken count of prompt + delivered text', async () => {
      const client = gw.client();
      const expected: Expected[] = [];
      for (const delivered of [1, 3, 5, 8]) {
        const messages = [{ role: 'user' as const, content: `please count the words of this request number ${delivered} slowly and carefully` }];
        // The role chunk, `delivered` content chunks, then silence: no finish, no usage.
        upstream.script({ stallAfterChunks: 1 + delivered });
        const controller = new AbortController();
        const { data: stream, response } = await client.chat.completions
          .create({ model: 'gpt-fake', stream: true, messages }, { signal: controller.signal })
          .withResponse();
        let text = '';
        let received = 0;
        for await (const chunk of stream) {
          const content = chunk.choices[0]?.delta?.content;
          if (content) {
            text += content;
            received++;
          }
          if (received === delivered) break;
        }
        controller.abort();
        assert.equal(received, delivered);
        const prompt = await countMessageTokens(messages);
        const completion = await countTextTokens(text);
        assert.ok(completion > 0);
        expected.push({ id: response.headers.get('x-request-id')!, prompt, completion, nano: prompt * INPUT_NANO + completion * OUTPUT_NANO });
      }
      const nano = expected.reduce((n, e) => n + e.nano, 0);
      const prompts = expected.reduce((n, e) => n + e.prompt, 0);
      const completions = expected.reduce((n, e) => n + e.completion, 0);

      // The audit record of each: its own count, priced, and the client's leaving as the error.
      const records = await waitFor(
        'audit records',
        async () => (await gw.auditRecords()).filter((r) => expected.some((e) => e.id === r.id)),
        (rs) => rs.length === expected.length,
      );
      for (const e of expected) {
        const r = records.find((x) => x.id === e.id)!;
        assert.equal(r.error_code, 'client_disconnected');
        assert.equal(r.client_disconnected, true);
        assert.deepEqual(r.usage, { prompt_tokens: e.prompt, completion_tokens: e.completion, total_tokens: e.prompt + e.completion });
        assert.equal((r.cost as { nano_usd: number }).nano_usd, e.nano);
      }

      const limits = await waitFor(
        'settlement',
        async () => (await (await admin(gw, '/admin/budgets')).json()) as {
          data: Array<{ name: string; spent: { usd: number; tokens: number; requests: number }; reserved: { usd: number } }>;
          rate_limits: Array<{ name: string; current_minute: Minute; previous_minute: Minute }>;
        },
        (b) => b.data.find((r) => r.name === 'alpha-day')!.spent.requests === expected.length && b.data.find((r) => r.name === 'alpha-day')!.reserved.usd === 0,
      );
      const budget = limits.data.find((r) => r.name === 'alpha-day')!;
      assert.equal(Math.round(budget.spent.usd * 1e9), nano);
      assert.equal(budget.spent.tokens, prompts + completions);
      const rate = limits.rate_limits.find((r) => r.name === 'alpha-rate')!;
      // The window may have crossed a minute: the two counters behind it hold everything.
      assert.equal(rate.current_minute.spent.tokens + rate.previous_minute.spent.tokens, prompts + completions);
      assert.equal(rate.current_minute.spent.requests + rate.previous_minute.spent.requests, expected.length);
      assert.equal(rate.current_minute.reserved.tokens + rate.previous_minute.reserved.tokens, 0);

      const usage = (await (await admin(gw, '/admin/usage?group_by=key')).json()) as { total: { nano_usd: number; requests: number; input_tokens: number; output_tokens: number } };
      assert.deepEqual(usage.total, { ...usage.total, nano_usd: nano, requests: expected.length, input_tokens: prompts, output_tokens: completions });

      const { stdout } = await run(process.execPath, [path.resolve('bin/lanegate.mjs'), 'costs', '--config', gw.configFile, '--by', 'key', '--csv'], { timeout: 60_000 });
      const total = stdout.split('\n').find((l) => l.startsWith('total,'));
      // The last two columns are the saved (cache hit) input and output tokens: none here.
      assert.equal(total, `total,${expected.length},${prompts},${completions},${(nano / 1e9).toFixed(6)},0,0`);

      const metrics = await (await fetch(`${gw.url}/metrics`)).text();
      assert.equal(Math.round(metricSum(metrics, 'lanegate_spend_usd_total', { key: 'alpha' }) * 1e9), nano);
      assert.equal(metricSum(metrics, 'lanegate_tokens_total', { direction: 'input', app: 'app-alpha' }), prompts);
      assert.equal(metricSum(metrics, 'lanegate_tokens_total', { direction: 'output', app: 'app-alpha' }), completions);
    });
  });
}

interface Minute {
  spent: { requests: number; tokens: number };
  reserved: { requests: number; tokens: number };
}
