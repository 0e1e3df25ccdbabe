import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startFakeOpenAI, type FakeOpenAI } from '../helpers/fake-openai.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { adminGet, auditRecordFor, openaiProvider, postChat, routingConfig, waitFor } from '../helpers/routing.js';

interface DeploymentView {
  id: string;
  breaker: 'closed' | 'open' | 'half_open';
  breaker_open_for_ms: number;
}

describe('resilience', () => {
  let primary: FakeOpenAI;
  let secondary: FakeOpenAI;
  let flaky: FakeOpenAI;
  let retried: FakeOpenAI;
  let gw: TestGateway;
  before(async () => {
    [primary, secondary, flaky, retried] = await Promise.all([startFakeOpenAI(), startFakeOpenAI(), startFakeOpenAI(), startFakeOpenAI()]);
    gw = await startTestGateway({
      yaml: routingConfig(`
providers:
  prim: ${openaiProvider(primary.url)}
  sec: ${openaiProvider(secondary.url, 'retry: { max_retries: 0 }, breaker: { enabled: false }')}
  flaky: ${openaiProvider(flaky.url)}
  retried: ${openaiProvider(retried.url)}
models:
  guarded:
    deployments:
      - provider: prim
        model: m
        retry: { max_retries: 0 }
        # Long enough that the ten requests below finish inside it even on a
        # loaded machine (400 ms let a probe through early under load).
        breaker: { consecutive_failures: 3, cooldown_ms: 1500 }
      - { provider: sec, model: m }
  flaky:
    deployments:
      - provider: flaky
        model: m
        retry: { max_retries: 3, base_delay_ms: 1, max_delay_ms: 2, budget_ratio: 0.1, budget_min_per_second: 0 }
        breaker: { enabled: false }
  retried:
    deployments:
      - provider: retried
        model: m
        retry: { max_retries: 1, base_delay_ms: 1, max_delay_ms: 2, max_retry_after_ms: 5000 }
        breaker: { enabled: false }
`),
    });
  });
  after(async () => {
    await gw.close();
    await Promise.all([primary.close(), secondary.close(), flaky.close(), retried.close()]);
  });

  async function deployment(id: string): Promise<DeploymentView | undefined> {
    const res = await adminGet(gw, '/admin/deployments');
    assert.equal(res.status, 200);
    const body = (await res.json()) as { data: DeploymentView[] };
    return body.data.find((d) => d.id === id);
  }

  it('breaker – opens after 3 failures in a row, sheds load to the fallback, and one probe closes it again', async () => {
    primary.always({ status: 500 });
    const served: string[] = [];
    let lastId: string | null = null;
    for (let i = 0; i < 10; i++) {
      const res = await postChat(gw, { model: 'guarded' });
      assert.equal(res.status, 200, `request ${i}`);
      await res.json();
      served.push(res.headers.get('x-gateway-deployment') ?? '');
      lastId = res.headers.get('x-request-id');
    }
    assert.equal(primary.calls.length, 3, 'the open breaker kept the rest away from the primary');
    assert.equal(secondary.calls.length, 10);
    assert.ok(served.every((d) => d === 'sec/m'));

    const open = await deployment('prim/m');
    assert.equal(open?.breaker, 'open');
    assert.ok(open.breaker_open_for_ms > 0);

    const record = await auditRecordFor(gw, lastId);
    assert.equal(record.attempts[0]!.errorClass, 'breaker_open', 'a refused attempt is recorded without a call');

    // The primary recovers; once the cool-down is over one probe may pass.
    primary.always(undefined);
    await waitFor('the cool-down to end', async () => ((await deployment('prim/m'))?.breaker_open_for_ms === 0 ? true : undefined), 3000);
    const probe = await postChat(gw, { model: 'guarded' });
    assert.equal(probe.status, 200);
    await probe.json();
    assert.equal(probe.headers.get('x-gateway-deployment'), 'prim/m');
    assert.equal(primary.calls.length, 4);
    assert.equal((await deployment('prim/m'))?.breaker, 'closed');

    const secondaryBefore = secondary.calls.length;
    for (let i = 0; i < 3; i++) {
      const res = await postChat(gw, { model: 'guarded' });
      await res.json();
      assert.equal(res.headers.get('x-gateway-deployment'), 'prim/m');
    }
    assert.equal(primary.calls.length, 7);
    assert.equal(secondary.calls.length, secondaryBefore);
  });

  it('retry budget – retries during an outage stay near budget_ratio of traffic', async () => {
    flaky.always({ status: 503 });
    for (let i = 0; i < 40; i++) {
      const res = await postChat(gw, { model: 'flaky' });
      assert.equal(res.status, 503);
      assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'upstream_unavailable');
    }
    // Without a budget this would be 40 * (1 + 3) calls. The bucket starts
    // with one token and earns 0.1 per request: about 1 + 40 * 0.1 retries.
    const calls = flaky.calls.length;
    assert.ok(calls > 40, `some retries happened (${calls} calls)`);
    assert.ok(calls <= 40 + 6, `the budget capped retries (${calls} calls)`);
  });

  it('retry – one 503 then success: the client gets 200 and the audit shows retry 0 and 1', async () => {
    retried.calls.length = 0;
    retried.script({ status: 503 });
    const res = await postChat(gw, { model: 'retried' });
    assert.equal(res.status, 200);
    await res.json();
    assert.equal(retried.calls.length, 2);
    const record = await auditRecordFor(gw, res.headers.get('x-request-id'));
    assert.deepEqual(
      record.attempts.map((x) => ({ deployment: x.deployment, code: x.code, retry: x.retry, fallback: x.fallback })),
      [
        { deployment: 'retried/m', code: 'upstream_unavailable', retry: 0, fallback: false },
        { deployment: 'retried/m', code: undefined, retry: 1, fallback: false },
      ],
    );
  });

  it('retry – a 429 is not retried on the same deployment, even with retry-after: 0: the client’s SDK retries it', async () => {
    retried.calls.length = 0;
    retried.script({ status: 429, headers: { 'retry-after': '0' } });
    const res = await postChat(gw, { model: 'retried' });
    assert.equal(res.status, 429);
    assert.equal(res.headers.get('retry-after'), '0');
    await res.json();
    assert.equal(retried.calls.length, 1);
    const record = await auditRecordFor(gw, res.headers.get('x-request-id'));
    assert.deepEqual(
      record.attempts.map((x) => [x.code, x.retry]),
      [['upstream_rate_limited', 0]],
    );
  });

  it('retry – a retry-after longer than max_retry_after_ms is not waited for', async () => {
    retried.calls.length = 0;
    retried.script({ status: 429, headers: { 'retry-after': '60' } });
    const res = await postChat(gw, { model: 'retried' });
    assert.equal(res.status, 429);
    assert.equal(res.headers.get('retry-after'), '60');
    assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'upstream_rate_limited');
    assert.equal(retried.calls.length, 1);
  });
});
