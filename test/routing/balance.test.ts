import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { startFakeOpenAI, type FakeOpenAI } from '../helpers/fake-openai.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { openaiProvider, postChat, routingConfig } from '../helpers/routing.js';
import { DeploymentHealth } from '../../src/routing/health.js';

const STRICT = 'retry: { max_retries: 0 }, breaker: { enabled: false }';

describe('load balancing', () => {
  let one: FakeOpenAI;
  let two: FakeOpenAI;
  let gw: TestGateway;
  before(async () => {
    [one, two] = await Promise.all([startFakeOpenAI(), startFakeOpenAI()]);
    // Each strategy has its own provider pair so health (latency, in-flight)
    // learnt by one test cannot steer another.
    gw = await startTestGateway({
      yaml: routingConfig(`
providers:
  w1: ${openaiProvider(one.url, STRICT)}
  w2: ${openaiProvider(two.url, STRICT)}
  l1: ${openaiProvider(one.url, STRICT)}
  l2: ${openaiProvider(two.url, STRICT)}
  b1: ${openaiProvider(one.url, STRICT)}
  b2: ${openaiProvider(two.url, STRICT)}
models:
  weighted:
    balance: weighted
    deployments:
      - { provider: w1, model: m, weight: 3 }
      - { provider: w2, model: m, weight: 1 }
  latency:
    balance: least_latency
    deployments:
      - { provider: l1, model: m }
      - { provider: l2, model: m }
  busy:
    balance: least_busy
    deployments:
      - { provider: b1, model: m }
      - { provider: b2, model: m }
`),
    });
  });
  after(async () => {
    await gw.close();
    await Promise.all([one.close(), two.close()]);
  });
  beforeEach(() => {
    for (const f of [one, two]) {
      f.calls.length = 0;
      f.always(undefined);
    }
  });

  async function send(model: string, count: number, concurrency: number): Promise<void> {
    let next = 0;
    const worker = async () => {
      while (next < count) {
        next++;
        const res = await postChat(gw, { model });
        assert.equal(res.status, 200);
        await res.json();
      }
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
  }

  it('balance – weighted 3:1 sends about three quarters to the heavier deployment', async () => {
    await send('weighted', 400, 8);
    assert.equal(one.calls.length + two.calls.length, 400, 'one call per request');
    const share = one.calls.length / 400;
    assert.ok(share >= 0.65 && share <= 0.85, `share of the weight-3 deployment: ${share}`);
  });

  it('balance – least_latency learns to prefer the faster deployment', async () => {
    // Far slower than the noise: a peak EWMA takes a slow answer at once, so a loaded machine's pause of more than
    // 60 ms (the old delay) in one fast answer had the fast deployment avoided for seconds.
    one.always({ delayMs: 500 });
    await send('latency', 60, 1);
    assert.equal(one.calls.length + two.calls.length, 60);
    assert.ok(two.calls.length > 45, `the fast deployment got ${two.calls.length} of 60 calls`);
  });

  it('balance – least_latency tries a deployment again once its one slow answer is old, however fast the other stays', () => {
    const [slow, fast] = gw.gateway.config().models.get('latency')!.deployments.map((d) => new DeploymentHealth(d, () => {}));
    const t0 = Date.now();
    slow!.observe(2000, t0); // one hiccup
    for (let t = t0; t <= t0 + 60_000; t += 1000) fast!.observe(50, t);
    assert.ok(slow!.cost(t0 + 1000) > fast!.cost(t0 + 1000), 'avoided right after its slow answer');
    assert.ok(slow!.cost(t0 + 60_000) < fast!.cost(t0 + 60_000), 'tried again a minute later');
  });

  it('balance – least_busy spreads concurrent slow requests over both deployments', async () => {
    one.always({ delayMs: 200 });
    two.always({ delayMs: 200 });
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        const res = await postChat(gw, { model: 'busy' });
        assert.equal(res.status, 200);
        await res.json();
      }),
    );
    assert.equal(one.calls.length + two.calls.length, 8);
    assert.ok(one.calls.length >= 2 && two.calls.length >= 2, `split ${one.calls.length}/${two.calls.length}`);
  });
});
