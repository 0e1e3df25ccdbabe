import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { createRedisClient } from '../../src/stores/redis.js';
import { createLogger } from '../../src/telemetry/logger.js';
import { OTHER_KEY, startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';
import { APP_KEY, metricValue, waitFor } from '../helpers/routing.js';

const COMMAND_TIMEOUT_MS = 1000;

const CONFIG = (redisUrl: string) => `
redis: { url: "${redisUrl}", key_prefix: circuit-test, command_timeout_ms: ${COMMAND_TIMEOUT_MS}, down_after_timeouts: 3, down_cooldown_ms: 5000 }
cache: { enabled: false }
budgets:
  rules:
    - { name: alpha-usd, scope: key, match: [alpha], period: day, usd: 100 }
    - { name: beta-open, scope: key, match: [beta], period: day, tokens: 1000000, on_store_error: fail_open }
`;

describe('Redis that stops answering', () => {
  let redis: TestRedis;
  let gw: TestGateway;
  before(async () => {
    redis = await startRedis();
    gw = await startTestGateway({ extra: CONFIG(redis.url) });
  });
  after(async () => {
    redis.resume();
    await gw.close();
    await redis.stop();
  });

  const post = async (key: string): Promise<{ status: number; code: string | undefined }> => {
    const res = await fetch(`${gw.baseURL}/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'fast', messages: [{ role: 'user', content: 'hi' }] }),
    });
    const body = (await res.json()) as { error?: { code: string } };
    return { status: res.status, code: body.error?.code };
  };

  it('store circuit – after a few timeouts budgeted requests fail fast (closed rules) or pass (open rules), and the store is used again once it answers', async () => {
    assert.equal((await post(APP_KEY)).status, 200, 'the store works before the freeze');
    redis.pause();

    // The first requests wait the command timeout each, until the store is marked down.
    for (let i = 0; i < 3; i++) assert.equal((await post(APP_KEY)).code, 'service_unavailable');

    // Then: 20 requests one after another. Waiting out the command timeout each
    // would take 20 s, so at most 10 could finish in the first 10 s.
    const deadline = Date.now() + 10 * COMMAND_TIMEOUT_MS;
    let inTime = 0;
    const seen: Array<{ key: string; status: number; code: string | undefined }> = [];
    for (let i = 0; i < 20; i++) {
      const key = i % 2 === 0 ? APP_KEY : OTHER_KEY;
      const result = await post(key);
      seen.push({ key: key === APP_KEY ? 'alpha' : 'beta', ...result });
      if (Date.now() <= deadline) inTime++;
    }
    assert.ok(inTime >= 18, `${inTime} of 20 requests finished within ${10 * COMMAND_TIMEOUT_MS} ms`);
    for (const s of seen) {
      if (s.key === 'alpha') assert.deepEqual([s.status, s.code], [503, 'service_unavailable'], 'a fail_closed budget refuses while the store is down');
      else assert.equal(s.status, 200, 'a fail_open budget serves while the store is down');
    }
    assert.match(gw.logs(), /redis is not answering: marked down/);
    assert.equal(await metricValue(gw, 'lanegate_redis_up{connection="commands"}'), 0);

    // It answers again: after the cool-down a probe finds it and requests use it.
    redis.resume();
    await waitFor('a budgeted request to pass again', async () => ((await post(APP_KEY)).status === 200 ? true : undefined), 30_000);
    assert.match(gw.logs(), /redis answers again: marked up/);
    assert.equal(await metricValue(gw, 'lanegate_redis_up{connection="commands"}'), 1);
  });
});

describe('store circuit and pipelines', () => {
  it('store circuit – a pipeline is never the probe: one command of it sent and the rest refused would leave a reply owed, and every later reply one behind', async () => {
    const redis = await startRedis();
    const discard = new Writable({ write: (_chunk, _encoding, callback) => callback() });
    const store = createRedisClient({
      url: redis.url,
      keyPrefix: 'circuit-pipeline',
      logger: createLogger({ level: 'info', destination: discard }),
      commandTimeoutMs: 300,
      downAfterTimeouts: 1,
      downCooldownMs: 300,
    });
    try {
      await waitFor('the connection', () => (store.isReady() ? true : undefined), 10_000);
      await store.client.set('a', 'A');
      redis.pause();
      await assert.rejects(store.client.get('a'), /timed out/, 'one timeout marks the store down');
      await sleep(400); // past the cool-down: the next command is the probe
      const failed = await store.client
        .pipeline()
        .set('b', 'B')
        .get('a')
        .exec()
        .then((results) => (results ?? []).some(([err]) => err !== null), () => true);
      assert.ok(failed, 'the pipeline fails while Redis is frozen');
      redis.resume();
      // Probes every cool-down until one answers; each reply must be the one asked for.
      const answer = await waitFor('Redis to answer a probe', async () => (await store.client.get('a').catch(() => undefined)) ?? undefined, 10_000);
      assert.equal(answer, 'A');
      await store.client.set('c', 'C');
      assert.equal(await store.client.get('c'), 'C');
      assert.equal(await store.client.get('a'), 'A');
    } finally {
      redis.resume();
      await store.close();
      await redis.stop();
    }
  });
});
