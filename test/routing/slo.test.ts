import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { adminGet, APP_KEY, metricValue, postChat, routingConfig, waitFor } from '../helpers/routing.js';

interface SloView {
  route: string;
  latency_ms: number;
  target: number;
  good: number;
  total: number;
  ratio: number | null;
  meeting_objective: boolean | null;
  error_budget_remaining: number | null;
  since_start: { good: number; total: number; ratio: number | null };
}

describe('service-level objectives', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startTestGateway({
      yaml: routingConfig(`
providers:
  mock: { type: mock }
  refused: { type: openai, base_url: "http://127.0.0.1:9/v1", requires_key: false, timeouts: { connect_ms: 1000, first_byte_ms: 1000, total_ms: 2000 }, retry: { max_retries: 0 }, breaker: { enabled: false } }
models:
  fast: { deployments: [{ provider: mock, model: m }] }
  down: { deployments: [{ provider: refused, model: m }] }
  plain:
    deployments: [{ provider: mock, model: p }]
    slo: { latency_ms: 5000, target: 0.5 }
routes:
  auto:
    slo: { latency_ms: 5000, target: 0.9 }
    rules:
      - { name: broken, match: { tags: [fail] }, model: down }
      - { name: rest, default: true, model: fast }
`),
    });
  });
  after(async () => {
    await gw.close();
  });

  async function sloOf(route: string, total: number): Promise<SloView> {
    // Requests are counted once they are finished, just after the response.
    return waitFor(`${total} requests counted for ${route}`, async () => {
      const res = await adminGet(gw, '/admin/slo');
      assert.equal(res.status, 200);
      const entry = ((await res.json()) as { data: SloView[] }).data.find((s) => s.route === route);
      return entry && entry.total >= total ? entry : undefined;
    });
  }

  it('slo – 5 good and 1 failed request: ratio 5/6 misses a 0.9 objective', async () => {
    for (let i = 0; i < 5; i++) {
      const res = await postChat(gw, { model: 'auto' });
      assert.equal(res.status, 200);
      await res.json();
    }
    const failed = await postChat(gw, { model: 'auto' }, { headers: { 'x-gateway-tags': 'fail' } });
    assert.equal(failed.status, 503);
    await failed.json();

    const slo = await sloOf('auto', 6);
    assert.equal(slo.total, 6);
    assert.equal(slo.good, 5);
    assert.equal(slo.ratio, 5 / 6);
    assert.equal(slo.meeting_objective, false);
    assert.equal(slo.target, 0.9);
    assert.equal(slo.latency_ms, 5000);
    assert.ok(slo.error_budget_remaining !== null && slo.error_budget_remaining < 0, 'one failure in six overspends a 10% budget');
    assert.deepEqual(slo.since_start, { good: 5, total: 6, ratio: 5 / 6 });

    assert.equal(await metricValue(gw, 'lanegate_slo_requests_total{route="auto",result="good"}'), 5);
    assert.equal(await metricValue(gw, 'lanegate_slo_requests_total{route="auto",result="bad"}'), 1);
    assert.equal(await metricValue(gw, 'lanegate_slo_target_ratio{route="auto"}'), 0.9);
  });

  it('slo – a model’s own objective is tracked under the model name', async () => {
    for (let i = 0; i < 2; i++) {
      const res = await postChat(gw, { model: 'plain' });
      assert.equal(res.status, 200);
      await res.json();
    }
    const slo = await sloOf('plain', 2);
    assert.equal(slo.good, 2);
    assert.equal(slo.meeting_objective, true);
  });

  it('slo – GET /admin/slo needs the admin key', async () => {
    const none = await adminGet(gw, '/admin/slo', null);
    assert.equal(none.status, 401);
    assert.equal(((await none.json()) as { error: { code: string } }).error.code, 'invalid_api_key');
    const app = await adminGet(gw, '/admin/slo', APP_KEY);
    assert.equal(app.status, 401);
    await app.json();
  });
});
