// A budget store failure that becomes a 503 says why in the log: a Redis that
// does not answer (paused) reads differently from one that is gone (killed),
// each cause at most once per interval, and never with the Redis password.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { APP_KEY, startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';

const PASSWORD = 'redis-secret-pw-DO-NOT-LOG-77';

interface LogLine {
  msg: string;
  mode?: string;
  cause?: { name: string; code?: string; message: string };
  redis?: { status: string; connectionError?: { code?: string; message: string } };
  suppressed?: number;
}

describe('budget store failures in the log', () => {
  let redis: TestRedis;
  let gw: TestGateway;
  before(async () => {
    redis = await startRedis({ password: PASSWORD });
    assert.ok(redis.url.includes(PASSWORD));
    gw = await startTestGateway({
      extra: `
redis: { url: "${redis.url}", key_prefix: store-errors-test }
pricing:
  mock-fast: { input: 10, output: 10, max_output_tokens: 50 }
budgets:
  rules:
    - { name: team-daily, scope: team, match: [team-alpha], period: day, usd: 100 }
`,
    });
  });
  after(async () => {
    redis.resume();
    await gw.close();
    await redis.stop();
  });

  const ask = () =>
    fetch(`${gw.baseURL}/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${APP_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'fast', max_tokens: 1, messages: [{ role: 'user', content: 'x' }] }),
    });
  const storeLines = (): LogLine[] =>
    gw
      .logs()
      .split('\n')
      .filter((l) => l.includes('budget store failed'))
      .map((l) => JSON.parse(l) as LogLine);

  it('store errors – a paused Redis is logged as a timeout, once for a burst of 503s', async () => {
    assert.equal((await ask()).status, 200);
    redis.pause();
    try {
      for (let i = 0; i < 8; i++) {
        const res = await ask();
        assert.equal(res.status, 503);
        assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'service_unavailable');
      }
    } finally {
      redis.resume();
    }
    // One line for the timeouts and, once the store circuit marks Redis down
    // after a few of them, one for the fast failures that follow: never one per 503.
    const lines = storeLines();
    assert.ok(lines.length >= 1 && lines.length <= 2, JSON.stringify(lines));
    for (const line of lines) {
      assert.equal(line.mode, 'fail_closed');
      assert.match(line.cause!.message, /timed out/i);
    }
  });

  it('store errors – a killed Redis is logged as refused connections, a new cause logged at once', async () => {
    // Back to normal after the pause.
    const deadline = Date.now() + 10_000;
    while ((await ask()).status !== 200 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    await redis.kill();
    const refused = () => storeLines().some((l) => l.redis?.connectionError?.code === 'ECONNREFUSED' || /ECONNREFUSED/.test(l.cause?.message ?? ''));
    while (!refused() && Date.now() < deadline + 10_000) {
      assert.equal((await ask()).status, 503);
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(refused(), JSON.stringify(storeLines()));
    assert.ok(storeLines().length <= 4, `rate-limited: ${storeLines().length} lines`);
    assert.ok(!gw.logs().includes(PASSWORD), 'the Redis password is not in the log');
  });
});
