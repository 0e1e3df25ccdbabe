// Rate limits over HTTP: token limits reserve the worst case and settle to
// what was used, and a refusal says exactly when the rolling window admits.
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import OpenAI from 'openai';
import path from 'node:path';
import { previousMinuteId } from '../../src/budget/periods.js';
import { loadConfig } from '../../src/config/load.js';
import { createRedisBudgetStore } from '../../src/budget/redis-store.js';
import { createRedisClient, type RedisStore } from '../../src/stores/redis.js';
import { createLogger } from '../../src/telemetry/logger.js';
import { startFakeOpenAI, type FakeOpenAI } from '../helpers/fake-openai.js';
import { ADMIN_KEY, defaultTestConfig, startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';

// A request without max_tokens reserves its prompt bound plus 1,000 tokens: three do not fit in 3,000.
const TPM = `
pricing:
  mock-fast: { input: 1, output: 1, max_output_tokens: 1000 }
  gpt-4o-mini: { input: 1, output: 1, max_output_tokens: 1000 }
rate_limits:
  - { name: alpha-tpm, scope: key, match: [alpha], tokens_per_minute: 3000 }
`;

interface RateRow {
  name: string;
  current_minute: { spent: { requests: number; tokens: number }; reserved: { requests: number; tokens: number } };
  previous_minute: { spent: { requests: number; tokens: number }; reserved: { requests: number; tokens: number } };
}

async function rateRow(gw: TestGateway, name: string): Promise<RateRow> {
  const res = await fetch(`${gw.url}/admin/budgets`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } });
  return ((await res.json()) as { rate_limits: RateRow[] }).rate_limits.find((r) => r.name === name)!;
}

/** The row once settlement (which runs after each response) has released every reservation. */
async function settledRow(gw: TestGateway, name: string): Promise<RateRow> {
  const deadline = Date.now() + 5000;
  for (;;) {
    const row = await rateRow(gw, name);
    const held = row.current_minute.reserved.tokens + row.previous_minute.reserved.tokens + row.current_minute.reserved.requests + row.previous_minute.reserved.requests;
    if (held === 0 || Date.now() > deadline) return row;
    await sleep(25);
  }
}

for (const kind of ['memory', 'redis'] as const) {
  describe(`token rate limits (${kind} store)`, () => {
    let redis: TestRedis | undefined;
    let upstream: FakeOpenAI;
    let gw: TestGateway;
    before(async () => {
      if (kind === 'redis') redis = await startRedis();
      upstream = await startFakeOpenAI();
      const store = redis ? `redis: { url: "${redis.url}", key_prefix: tpm-test }\n` : '';
      // The upstream's timeouts far off: requests held in flight end when the test lets them go, however loaded the machine.
      const base = defaultTestConfig({ openaiUrl: upstream.url }).replace('timeouts: { connect_ms: 1000, first_byte_ms: 1500, total_ms: 5000 }', 'timeouts: { connect_ms: 20000, first_byte_ms: 30000, total_ms: 60000 }');
      gw = await startTestGateway({ yaml: base + store + TPM });
    });
    after(async () => {
      await gw.close();
      await upstream.close();
      await redis?.stop();
    });

    it('token limits – requests without max_tokens hold the worst case only while in flight, then what they used', async () => {
      const client = gw.client();
      // Worst case 20 × ~1,011 tokens, twenty times what fits; each really uses about ten.
      for (let i = 0; i < 20; i++) {
        const answer = await client.chat.completions.create({ model: 'fast', messages: [{ role: 'user', content: `n${i}` }] });
        assert.ok(answer.usage!.total_tokens < 20, `request ${i + 1} used ${answer.usage!.total_tokens} tokens`);
      }
      const settled = await settledRow(gw, 'alpha-tpm');
      const spent = settled.current_minute.spent.tokens + settled.previous_minute.spent.tokens;
      assert.ok(spent > 0 && spent < 400, `spent ${spent}`);
      assert.equal(settled.current_minute.spent.requests + settled.previous_minute.spent.requests, 20);

      // Five at once, each held in flight (its stream stalls after one chunk until the test lets go): at
      // worst case only two fit beside what was used, and the rest are refused.
      upstream.always({ stallAfterChunks: 2 });
      const controller = new AbortController();
      try {
        const calls = upstream.calls.length;
        const results = await Promise.allSettled(
          Array.from({ length: 5 }, () =>
            client.chat.completions.create({ model: 'gpt-fake', stream: true, messages: [{ role: 'user', content: 'x' }] }, { signal: controller.signal }),
          ),
        );
        const ok = results.filter((r) => r.status === 'fulfilled').length;
        const refused = results.filter((r) => r.status === 'rejected').map((r) => (r as PromiseRejectedResult).reason as InstanceType<typeof OpenAI.APIError>);
        assert.equal(ok, 2);
        assert.equal(refused.length, 3);
        for (const e of refused) {
          assert.equal(e.status, 429);
          assert.equal((e.error as { code?: string }).code, 'rate_limited');
        }
        assert.equal(upstream.calls.length, calls + 2, 'refused requests never reach the upstream');
      } finally {
        upstream.always(undefined);
        controller.abort();
      }
      // Once settled, the worst cases are released and the room is back.
      const row = await settledRow(gw, 'alpha-tpm');
      assert.equal(row.current_minute.reserved.tokens + row.previous_minute.reserved.tokens, 0);
      const again = await client.chat.completions.create({ model: 'fast', messages: [{ role: 'user', content: 'again' }] });
      assert.ok(again.usage);
    });
  });
}

describe('the shipped dev-rpm limit', () => {
  let gw: TestGateway;
  let rpm: number;
  before(async () => {
    // The shipped limit and prices, applied to the test key.
    const shipped = (await loadConfig(path.resolve(import.meta.dirname, '../../config/gateway.yaml'), {})).config;
    const limit = shipped.rate_limits.find((r) => r.name === 'dev-rpm')!;
    const price = shipped.pricing['mock-fast']!;
    rpm = limit.requests_per_minute!;
    gw = await startTestGateway({
      extra: `
pricing:
  mock-fast: { input: ${price.input}, output: ${price.output}, max_output_tokens: ${price.max_output_tokens} }
rate_limits:
  - { name: dev-rpm, scope: key, match: [alpha], requests_per_minute: ${rpm}, tokens_per_minute: ${limit.tokens_per_minute} }
`,
    });
  });
  after(() => gw.close());

  it('token limits – the shipped dev-rpm admits its requests per minute when they set no max_tokens', async () => {
    const client = gw.client();
    // Beyond the ~122 that tokens_per_minute / max_output_tokens let through when each kept its worst case.
    const n = Math.min(rpm, 200);
    for (let i = 0; i < n; i++) await client.chat.completions.create({ model: 'fast', messages: [{ role: 'user', content: `q${i}` }] });
    const row = await settledRow(gw, 'dev-rpm');
    assert.equal(row.current_minute.spent.requests + row.previous_minute.spent.requests, n);
  });
});

describe('rate limit refusals say when the window admits (Redis)', () => {
  const PREFIX = 'reset-test';
  const RPM = 10; // one request fades out of the window every 6 s
  let redis: TestRedis;
  let upstream: FakeOpenAI;
  let gw: TestGateway;
  let replica: RedisStore;
  before(async () => {
    redis = await startRedis();
    upstream = await startFakeOpenAI();
    gw = await startTestGateway({
      openaiUrl: upstream.url,
      extra: `
redis: { url: "${redis.url}", key_prefix: ${PREFIX} }
rate_limits:
  - { name: alpha-rpm, scope: key, match: [alpha], requests_per_minute: ${RPM} }
`,
    });
    const silent = new Writable({ write: (_chunk, _encoding, callback) => callback() });
    replica = createRedisClient({ url: redis.url, keyPrefix: PREFIX, logger: createLogger({ level: 'info', destination: silent }) });
    while (!replica.isReady()) await sleep(10);
  });
  after(async () => {
    await replica.close();
    await gw.close();
    await upstream.close();
    await redis.stop();
  });

  it('rate limits – a client that waits exactly retry-after-ms (x-ratelimit-reset-requests) is admitted, and 2.5 s less is still refused', async () => {
    // Another replica admitted the key's whole limit in the last millisecond of the previous
    // minute: from now on the window frees one request every 60 s / RPM.
    const store = createRedisBudgetStore(replica);
    const now = Date.now();
    const last = now - (now % 60_000) - 1;
    const id = `rate:alpha-rpm:key:alpha:${previousMinuteId(now)}`;
    for (let i = 0; i < RPM; i++) {
      const check = { id, ttlMs: 180_000, limit: { requests: RPM }, amount: { usd: 0, tokens: 0, requests: 1 }, commit: true };
      assert.equal((await store.reserve(`replica-${i}`, [check], last + 600_000, last)).ok, true);
    }

    const client = gw.client();
    const ask = () => client.chat.completions.create({ model: 'fast', max_tokens: 5, messages: [{ role: 'user', content: 'hi' }] });
    /** Sends until refused; returns the refusal's headers. */
    const untilRefused = async (): Promise<Headers> => {
      for (let i = 0; i <= RPM; i++) {
        try {
          await ask();
        } catch (err) {
          assert.ok(err instanceof OpenAI.RateLimitError, String(err));
          return err.headers as Headers;
        }
      }
      assert.fail(`more than ${RPM} requests admitted in one window`);
    };
    const waitOf = (headers: Headers) => {
      const ms = Number(headers.get('retry-after-ms'));
      assert.ok(ms > 0 && ms <= 60_000 / RPM + 1000, `retry-after-ms ${ms}`);
      assert.equal(headers.get('retry-after'), String(Math.ceil(ms / 1000)));
      const reset = headers.get('x-ratelimit-reset-requests')!;
      assert.equal(reset.endsWith('ms') ? Number(reset.slice(0, -2)) : Math.round(Number(reset.slice(0, -1)) * 1000), ms, `reset ${reset}`);
      return ms;
    };

    // However far into the minute this runs, the first wait may be any length up to one slot:
    // a short one is taken, and the next refusal then comes right after a slot was used.
    // (A minute turning meanwhile can make any wait short: then the same again.)
    let wait = waitOf(await untilRefused());
    for (let round = 0; wait <= 4000 && round < 4; round++) {
      await sleep(wait);
      await ask(); // waiting exactly that long was enough
      wait = waitOf(await untilRefused());
    }
    assert.ok(wait > 4000, `wait ${wait}`);
    // (2.5 s early, so that even a starved machine sends it well before the instant.)
    await sleep(wait - 2500);
    await assert.rejects(ask(), OpenAI.RateLimitError, '2.5 s early is still refused');
    await sleep(2500);
    const answer = await ask();
    assert.ok(answer.choices[0]!.message.content);
  });
});
