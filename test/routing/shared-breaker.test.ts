import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { hashKey } from '../../src/auth/keys.js';
import { startFakeOpenAI, type FakeOpenAI } from '../helpers/fake-openai.js';
import { ADMIN_KEY, APP_KEY, startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';

const config = (primary: string, backup: string, quota: string, redisUrl: string) => `
server: { port: 0, host: 127.0.0.1 }
logging: { level: warn, access_log: false }
auth: { mode: keys, admin_key_sha256: ${hashKey(ADMIN_KEY)} }
keys: [{ id: alpha, sha256: ${hashKey(APP_KEY)}, app: a, team: t }]
redis: { url: "${redisUrl}", key_prefix: breaker-test }
providers:
  primary:
    type: openai
    base_url: ${primary}/v1
    api_key: k
    retry: { max_retries: 0 }
    breaker: { consecutive_failures: 2, cooldown_ms: 60000 }
  backup: { type: openai, base_url: ${backup}/v1, api_key: k, retry: { max_retries: 0 } }
  quota: { type: openai, base_url: ${quota}/v1, api_key: k, retry: { max_retries: 0 } }
models:
  m:
    deployments:
      - { provider: primary, model: p }
      - { provider: backup, model: b }
  q:
    deployments:
      - { provider: quota, model: q }
      - { provider: backup, model: b }
audit: { sink: off }
`;

describe('breaker shared through redis', () => {
  let redis: TestRedis;
  let primary: FakeOpenAI;
  let backup: FakeOpenAI;
  let quota: FakeOpenAI;
  let a: TestGateway;
  let b: TestGateway;
  before(async () => {
    redis = await startRedis();
    primary = await startFakeOpenAI();
    backup = await startFakeOpenAI();
    quota = await startFakeOpenAI();
    a = await startTestGateway({ yaml: config(primary.url, backup.url, quota.url, redis.url) });
    b = await startTestGateway({ yaml: config(primary.url, backup.url, quota.url, redis.url) });
  });
  after(async () => {
    await a.close();
    await b.close();
    await primary.close();
    await backup.close();
    await quota.close();
    await redis.stop();
  });

  const ask = (gw: TestGateway, model = 'm') => gw.client().chat.completions.create({ model, messages: [{ role: 'user', content: 'hi' }] });

  it('breaker – opened on one replica, the other stops calling the failing deployment too', async () => {
    primary.always({ status: 500 });
    await ask(a);
    await ask(a);
    assert.equal(primary.calls.length, 2, 'replica A tried the primary twice, then opened its breaker');
    await ask(a);
    assert.equal(primary.calls.length, 2);

    // replica B learns of it through Redis
    const deadline = Date.now() + 5000;
    let state = '';
    while (Date.now() < deadline) {
      const res = await fetch(`${b.url}/admin/deployments`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } });
      const body = (await res.json()) as { data: Array<{ id: string; breaker: string }> };
      state = body.data.find((d) => d.id === 'primary/p')?.breaker ?? '';
      if (state === 'open') break;
      // B has not used the deployment yet, so it only appears once B routes a request
      if (!state) await ask(b).catch(() => {});
      await new Promise((r) => setTimeout(r, 50));
    }
    const callsBefore = primary.calls.length;
    for (let i = 0; i < 5; i++) {
      const res = await ask(b);
      assert.equal(res.choices[0]!.message.content, 'Hello from fake-openai: hi');
    }
    assert.equal(state, 'open');
    assert.equal(primary.calls.length, callsBefore, 'replica B sent nothing to the open deployment');
  });

  it('429 cool-down – a provider 429 seen by one replica rests the deployment on the other too', async () => {
    // B knows the deployment before the 429, so what it learns is the news, not a start-up scan.
    const warm = await ask(b, 'q');
    assert.equal(warm.choices[0]!.message.content, 'Hello from fake-openai: hi');
    assert.equal(quota.calls.length, 1);

    quota.script({ status: 429, headers: { 'retry-after': '30' } });
    await ask(a, 'q');
    assert.equal(quota.calls.length, 2, 'replica A got the 429 and fell back');
    const rested = await (async () => {
      const deadline = Date.now() + 5000;
      while (Date.now() < deadline) {
        const text = await (await fetch(`${b.url}/metrics`)).text();
        const line = text.split('\n').find((l) => l.startsWith('lanegate_cooldown_until_seconds{deployment="quota/q"} '));
        if (line) return Number(line.split(' ')[1]);
        await new Promise((r) => setTimeout(r, 50));
      }
      return undefined;
    })();
    assert.ok(rested !== undefined && rested * 1000 > Date.now(), 'replica B learnt of the rest');
    for (let i = 0; i < 3; i++) await ask(b, 'q');
    assert.equal(quota.calls.length, 2, 'replica B sent nothing to the resting deployment');
  });
});
