import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import OpenAI from 'openai';
import { startFakeOpenAI, type FakeOpenAI } from '../helpers/fake-openai.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { adminGet, auditRecordFor, metricValue, openaiProvider, postChat, routingConfig, waitFor } from '../helpers/routing.js';

interface DeploymentView {
  id: string;
  breaker: 'closed' | 'open' | 'half_open';
}

// One fake upstream per deployment, so who was called is who answered.
describe('429 cool-down', () => {
  let limited: FakeOpenAI;
  let spare: FakeOpenAI;
  let first: FakeOpenAI;
  let second: FakeOpenAI;
  let gw: TestGateway;
  before(async () => {
    [limited, spare, first, second] = await Promise.all([startFakeOpenAI(), startFakeOpenAI(), startFakeOpenAI(), startFakeOpenAI()]);
    gw = await startTestGateway({
      yaml: routingConfig(`
providers:
  limited: ${openaiProvider(limited.url, 'retry: { max_retries: 1, base_delay_ms: 1, max_delay_ms: 2 }, breaker: { consecutive_failures: 5, cooldown_ms: 60000 }, rate_limit_cooldown: { max_ms: 1500 }')}
  spare: ${openaiProvider(spare.url, 'retry: { max_retries: 0 }')}
  first: ${openaiProvider(first.url, 'retry: { max_retries: 0 }')}
  second: ${openaiProvider(second.url, 'retry: { max_retries: 0 }')}
models:
  pair:
    deployments:
      - { provider: limited, model: m }
      - { provider: spare, model: m }
  both-limited:
    deployments:
      - { provider: first, model: m }
      - { provider: second, model: m }
`),
    });
  });
  after(async () => {
    await gw.close();
    await Promise.all([limited.close(), spare.close(), first.close(), second.close()]);
  });

  async function breakerOf(id: string): Promise<string | undefined> {
    const body = (await (await adminGet(gw, '/admin/deployments')).json()) as { data: DeploymentView[] };
    return body.data.find((d) => d.id === id)?.breaker;
  }

  it('429 cool-down – six 429s do not open the breaker, the other deployment serves, and each 429 is tried once', async () => {
    // retry-after: 0 asks for no rest, so every request reaches the limited deployment first.
    limited.always({ status: 429, headers: { 'retry-after': '0' } });
    for (let i = 0; i < 6; i++) {
      const res = await postChat(gw, { model: 'pair' });
      assert.equal(res.status, 200, `request ${i}`);
      await res.json();
      assert.equal(res.headers.get('x-gateway-deployment'), 'spare/m');
    }
    assert.equal(limited.calls.length, 6, 'one call per request: a 429 is not retried on the same deployment');
    assert.equal(await breakerOf('limited/m'), 'closed', 'six 429s are not a health failure');
    limited.always(undefined);
    const res = await postChat(gw, { model: 'pair' });
    await res.json();
    assert.equal(res.headers.get('x-gateway-deployment'), 'limited/m');
  });

  it('429 cool-down – the deployment rests for retry-after (capped), the other serves meanwhile, then it is used again', async () => {
    limited.calls.length = 0;
    spare.calls.length = 0;
    // An hour asked for; the deployment's max_ms caps the rest at 1.5 s.
    limited.script({ status: 429, headers: { 'retry-after': '3600' } });
    const hit = await postChat(gw, { model: 'pair' });
    assert.equal(hit.status, 200);
    await hit.json();
    assert.equal(hit.headers.get('x-gateway-deployment'), 'spare/m');

    for (let i = 0; i < 3; i++) {
      const res = await postChat(gw, { model: 'pair' });
      assert.equal(res.status, 200);
      await res.json();
      assert.equal(res.headers.get('x-gateway-deployment'), 'spare/m', 'balancing avoids the resting deployment');
    }
    assert.equal(limited.calls.length, 1, 'no call to the deployment while it rests');
    assert.equal(spare.calls.length, 4);
    assert.equal(await metricValue(gw, 'lanegate_cooldowns_total{deployment="limited/m"}'), 1 + 6);
    const until = await metricValue(gw, 'lanegate_cooldown_until_seconds{deployment="limited/m"}');
    assert.ok(until !== undefined && until * 1000 - Date.now() <= 1500, `the rest is capped at max_ms (ends ${until})`);

    await waitFor('the rest to end', () => (Date.now() > until * 1000 ? true : undefined), 5000);
    const back = await postChat(gw, { model: 'pair' });
    assert.equal(back.status, 200);
    await back.json();
    assert.equal(back.headers.get('x-gateway-deployment'), 'limited/m', 'used again once the rest is over');
    assert.equal(limited.calls.length, 2);
  });

  it('429 cool-down – every deployment rate limited: 429 upstream_rate_limited with the earliest rest, and no calls until then', async () => {
    first.script({ status: 429, headers: { 'retry-after-ms': '40000', 'retry-after': '40' } });
    second.script({ status: 429, headers: { 'retry-after': '20' } });
    const res = await postChat(gw, { model: 'both-limited' });
    assert.equal(res.status, 429);
    assert.equal(res.headers.get('x-should-retry'), 'true');
    const retryAfter = Number(res.headers.get('retry-after'));
    assert.ok(retryAfter > 15 && retryAfter <= 20, `retry-after is the earliest rest's end, got ${retryAfter}`);
    assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'upstream_rate_limited');

    // The SDK sees a RateLimitError, and neither provider is asked again.
    await assert.rejects(
      gw.client().chat.completions.create({ model: 'both-limited', messages: [{ role: 'user', content: 'hi' }] }),
      OpenAI.RateLimitError,
    );
    const again = await postChat(gw, { model: 'both-limited' });
    assert.equal(again.status, 429);
    assert.ok(Number(again.headers.get('retry-after')) <= 20);
    await again.json();
    assert.equal(first.calls.length, 1);
    assert.equal(second.calls.length, 1);
    const record = await auditRecordFor(gw, again.headers.get('x-request-id'));
    assert.deepEqual(
      record.attempts.map((a) => [a.deployment, a.code, a.errorClass]),
      [
        ['first/m', 'upstream_rate_limited', 'cooling_down'],
        ['second/m', 'upstream_rate_limited', 'cooling_down'],
      ],
    );
  });
});
