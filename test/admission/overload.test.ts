import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { after, afterEach, before, describe, it } from 'node:test';
import OpenAI from 'openai';
import { startFakeOpenAI, type FakeOpenAI } from '../helpers/fake-openai.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { adminPost, APP_KEY, auditRecordFor, metricValue, openaiProvider, postChat, routingConfig, waitFor } from '../helpers/routing.js';

const DEPLOYMENT = 'up/m';

function config(upstreamUrl: string, admission: string, models = ''): string {
  return routingConfig(`
providers:
  up: ${openaiProvider(upstreamUrl, 'retry: { max_retries: 0 }, breaker: { enabled: false }, timeouts: { first_byte_ms: 5000, total_ms: 10000 }')}
models:
  slow: { deployments: [{ provider: up, model: m }] }
  duo: { deployments: [{ provider: up, model: m }, { provider: up, model: m2 }] }
${models}
admission:
${admission}
`);
}

interface Outcome {
  status: number;
  code: string | undefined;
  retryAfter: string | null;
  shouldRetry: string | null;
  /** Order in which the answers arrived, from 0. */
  order: number;
  deployment: string | null;
  requestId: string | null;
}

/** Sends each body at once and records the order the answers come back in. */
async function sendAll(gw: TestGateway, requests: Array<{ body?: Record<string, unknown>; headers?: Record<string, string> }>): Promise<Outcome[]> {
  let arrived = 0;
  return Promise.all(
    requests.map(async (r) => {
      const res = await postChat(gw, { model: 'slow', ...r.body }, { headers: r.headers });
      const json = (await res.json()) as { error?: { code: string } };
      return {
        status: res.status,
        code: json.error?.code,
        retryAfter: res.headers.get('retry-after'),
        shouldRetry: res.headers.get('x-should-retry'),
        order: arrived++,
        deployment: res.headers.get('x-gateway-deployment'),
        requestId: res.headers.get('x-request-id'),
      };
    }),
  );
}

function gauge(gw: TestGateway, name: string, gate: string): Promise<number | undefined> {
  return metricValue(gw, `${name}{gate="${gate}"}`);
}

describe('admission control', () => {
  let upstream: FakeOpenAI;
  let gw: TestGateway | undefined;
  before(async () => {
    upstream = await startFakeOpenAI();
  });
  afterEach(async () => {
    await gw?.close();
    gw = undefined;
    upstream.calls.length = 0;
    upstream.always(undefined);
  });
  after(async () => {
    await upstream.close();
  });

  it('deployment gate – the excess gets a fast 503 overloaded with retry-after and x-should-retry while admitted requests succeed', async () => {
    gw = await startTestGateway({ yaml: config(upstream.url, `  queue_timeout_ms: 5000\n  deployments: { "${DEPLOYMENT}": { max_inflight: 2, max_queue: 2 } }`) });
    // Long enough that all ten arrive while the first two are upstream, even on a loaded machine.
    upstream.always({ delayMs: 3000 });
    const running = sendAll(gw, [{}, {}]);
    await waitFor('two requests upstream', () => (upstream.calls.length === 2 ? true : undefined), 10_000);
    const outcomes = [...(await sendAll(gw, Array.from({ length: 8 }, () => ({})))), ...(await running)];

    const ok = outcomes.filter((o) => o.status === 200);
    const shed = outcomes.filter((o) => o.status !== 200);
    assert.equal(ok.length, 4, 'two in flight and two queued are served');
    assert.equal(shed.length, 6);
    for (const o of shed) {
      assert.equal(o.status, 503);
      assert.equal(o.code, 'overloaded');
      assert.equal(o.retryAfter, '1');
      assert.equal(o.shouldRetry, 'true');
    }
    // Sheds are answered at once, not after queueing: every one of them arrives before the first success.
    assert.ok(shed.every((o) => o.order < 6), 'every 503 came back before the queued requests were served');
    assert.equal(upstream.calls.length, 4, 'a shed request never reaches the upstream');

    const record = await auditRecordFor(gw, shed[0]!.requestId);
    assert.equal(record.error_code, 'overloaded');
    assert.equal(record.attempts[0]!.errorClass, 'shed');
    assert.equal(await metricValue(gw, `lanegate_admission_shed_total{gate="${DEPLOYMENT}",reason="queue_full"}`), 6);
    assert.equal(await metricValue(gw, `lanegate_admission_wait_seconds_count{gate="${DEPLOYMENT}"}`), 4);
  });

  it('deployment gate – the openai SDK sees the shed as a retryable 503 with code overloaded', async () => {
    gw = await startTestGateway({ yaml: config(upstream.url, `  deployments: { "${DEPLOYMENT}": { max_inflight: 1, max_queue: 0 } }`) });
    upstream.always({ delayMs: 400 });
    const client = new OpenAI({ apiKey: APP_KEY, baseURL: gw.baseURL, maxRetries: 0 });
    const first = client.chat.completions.create({ model: 'slow', messages: [{ role: 'user', content: 'first' }] });
    await waitFor('the first request upstream', () => (upstream.calls.length === 1 ? true : undefined), 10_000);
    await assert.rejects(client.chat.completions.create({ model: 'slow', messages: [{ role: 'user', content: 'second' }] }), (err: unknown) => {
      assert.ok(err instanceof OpenAI.APIError);
      assert.equal(err.status, 503);
      assert.equal(err.code, 'overloaded');
      assert.equal(err.type, 'api_error');
      assert.equal(err.headers?.get('x-should-retry'), 'true');
      return true;
    });
    assert.equal((await first).choices.length, 1);
    assert.equal(upstream.calls.length, 1);
  });

  it('deployment gate – a request that waits longer than queue_timeout_ms is shed with 503 overloaded', async () => {
    gw = await startTestGateway({ yaml: config(upstream.url, `  queue_timeout_ms: 200\n  deployments: { "${DEPLOYMENT}": { max_inflight: 1, max_queue: 10 } }`) });
    upstream.always({ delayMs: 1500 });
    const outcomes = await sendAll(gw, [{}, {}, {}]);
    const ok = outcomes.filter((o) => o.status === 200);
    const shed = outcomes.filter((o) => o.status === 503);
    assert.equal(ok.length, 1);
    assert.equal(shed.length, 2);
    assert.ok(shed.every((o) => o.code === 'overloaded' && o.order < ok[0]!.order), 'the timed-out ones are answered before the slot frees');
    assert.equal(upstream.calls.length, 1);
    assert.equal(await metricValue(gw, `lanegate_admission_shed_total{gate="${DEPLOYMENT}",reason="queue_timeout"}`), 2);
  });

  it('deployment gate – a request whose expected wait is past the queue timeout is shed at once, not after the timeout', async () => {
    gw = await startTestGateway({ yaml: config(upstream.url, `  queue_timeout_ms: 500\n  deployments: { "${DEPLOYMENT}": { max_inflight: 1, max_queue: 10 } }`) });
    upstream.always({ delayMs: 1000 });
    assert.equal((await sendAll(gw, [{}]))[0]!.status, 200, 'one request teaches the gate that a slot is held about 1 s');
    const outcomes = await sendAll(gw, [{}, {}]);
    assert.deepEqual(outcomes.map((o) => o.status).sort(), [200, 503]);
    assert.equal(outcomes.find((o) => o.status === 503)!.code, 'overloaded');
    assert.equal(await metricValue(gw, `lanegate_admission_shed_total{gate="${DEPLOYMENT}",reason="expected_wait"}`), 1);
    assert.equal(await metricValue(gw, `lanegate_admission_shed_total{gate="${DEPLOYMENT}",reason="queue_timeout"}`), undefined, 'it did not wait for the timeout');
  });

  it('deployment gate – a saturated deployment lets fallback try the next candidate; only when all shed is the answer overloaded', async () => {
    gw = await startTestGateway({
      // A breaker that opens on the first failure, so a shed counted as one would show.
      yaml: config(upstream.url, `  deployments: { "up/m": { max_inflight: 1, max_queue: 0 }, "up/m2": { max_inflight: 1, max_queue: 0 } }`).replace(
        'breaker: { enabled: false }',
        'breaker: { consecutive_failures: 1 }',
      ),
    });
    upstream.always({ delayMs: 400 });
    const outcomes = await sendAll(gw, [{ body: { model: 'duo' } }, { body: { model: 'duo' } }, { body: { model: 'duo' } }]);
    const ok = outcomes.filter((o) => o.status === 200);
    assert.deepEqual(ok.map((o) => o.deployment).sort(), ['up/m', 'up/m2']);
    const shed = outcomes.filter((o) => o.status !== 200);
    assert.equal(shed.length, 1);
    assert.equal(shed[0]!.status, 503);
    assert.equal(shed[0]!.code, 'overloaded', 'every candidate at capacity: overloaded, not upstream_unavailable');
    for (const deployment of ['up/m', 'up/m2']) {
      assert.equal((await metricValue(gw, `lanegate_breaker_state{deployment="${deployment}"}`)) ?? 0, 0, `a shed is not a failure of ${deployment}`);
    }
    assert.equal((await sendAll(gw, [{ body: { model: 'duo' } }]))[0]!.status, 200, 'both deployments still take requests');
  });

  it('priority – high is admitted before normal and low; a full queue of low makes room for high', async () => {
    gw = await startTestGateway({ yaml: config(upstream.url, `  queue_timeout_ms: 30000\n  deployments: { "${DEPLOYMENT}": { max_inflight: 1, max_queue: 3 } }`) });
    upstream.always({ delayMs: 1500 });
    const said = (text: string) => ({ body: { messages: [{ role: 'user', content: text }] } });
    const all: Array<Promise<Outcome[]>> = [sendAll(gw, [said('first')])];
    await waitFor('the first request upstream', () => (upstream.calls.length === 1 ? true : undefined), 10_000);
    all.push(sendAll(gw, [{ ...said('normal'), headers: {} }]));
    await waitFor('one queued', async () => ((await gauge(gw!, 'lanegate_admission_queued', DEPLOYMENT)) === 1 ? true : undefined), 10_000);
    all.push(sendAll(gw, [{ ...said('low-1'), headers: { 'x-gateway-priority': 'low' } }]));
    all.push(sendAll(gw, [{ ...said('low-2'), headers: { 'x-gateway-priority': 'low' } }]));
    await waitFor('three queued', async () => ((await gauge(gw!, 'lanegate_admission_queued', DEPLOYMENT)) === 3 ? true : undefined), 10_000);
    assert.equal(await gauge(gw, 'lanegate_admission_in_flight', DEPLOYMENT), 1);
    assert.equal(await gauge(gw, 'lanegate_admission_limit', DEPLOYMENT), 1);
    // The queue is full: high priority (from the body's metadata) displaces the newest low one.
    all.push(sendAll(gw, [{ body: { messages: [{ role: 'user', content: 'high' }], metadata: { priority: 'high' } } }]));
    const [first, normal, low1, low2, high] = (await Promise.all(all)).map((o) => o[0]!);

    assert.equal(first!.status, 200);
    assert.equal(high!.status, 200);
    assert.equal(normal!.status, 200);
    assert.equal(low1!.status, 200);
    assert.equal(low2!.status, 503, 'the newest low-priority request gave its place to the high one');
    assert.equal(low2!.code, 'overloaded');
    const served = upstream.calls.map((c) => (c.body.messages as Array<{ content: string }>)[0]!.content);
    assert.deepEqual(served, ['first', 'high', 'normal', 'low-1']);
    assert.equal(await metricValue(gw, `lanegate_admission_shed_total{gate="${DEPLOYMENT}",reason="displaced"}`), 1);
  });

  it('deployment gate – deployments without their own limit share the provider connections, so none waits in the pool', async () => {
    // Two deployments (up/m, up/m2) on one provider with 4 connections: 2 slots each, not 4 each.
    gw = await startTestGateway({
      yaml: config(upstream.url, '  deployment: { max_queue: 0 }').replace('requires_key: false,', 'requires_key: false, connections: 4,'),
    });
    upstream.always({ delayMs: 400 });
    const outcomes = await sendAll(gw, [{}, {}, {}, {}]);
    assert.deepEqual(outcomes.map((o) => o.status).sort(), [200, 200, 503, 503]);
    assert.equal(await gauge(gw, 'lanegate_admission_limit', DEPLOYMENT), 2);
  });

  it('global gate – caps requests in flight across deployments before the body is read', async () => {
    gw = await startTestGateway({ yaml: config(upstream.url, '  global: { max_inflight: 1, max_queue: 0 }') });
    upstream.always({ delayMs: 400 });
    const outcomes = await sendAll(gw, [{ body: { model: 'slow' } }, { body: { model: 'duo' } }]);
    assert.deepEqual(outcomes.map((o) => o.status).sort(), [200, 503]);
    assert.equal(outcomes.find((o) => o.status === 503)!.code, 'overloaded');
    assert.equal(upstream.calls.length, 1);
    assert.equal(await metricValue(gw, 'lanegate_admission_shed_total{gate="global",reason="queue_full"}'), 1);
  });

  it('slots – in flight returns to 0 after streams, client aborts (queued and streaming), upstream errors and timeouts', async () => {
    gw = await startTestGateway({
      yaml: config(upstream.url, `  queue_timeout_ms: 5000\n  deployments: { "${DEPLOYMENT}": { max_inflight: 1, max_queue: 5 } }`, '  tight: { deployments: [{ provider: up, model: m, timeouts: { first_byte_ms: 200, total_ms: 400 } }] }'),
    });
    const client = new OpenAI({ apiKey: APP_KEY, baseURL: gw.baseURL, maxRetries: 0 });

    // A stream holds its slot until it ends.
    upstream.always({ chunkDelayMs: 400 });
    const stream = await client.chat.completions.create({ model: 'slow', stream: true, messages: [{ role: 'user', content: 'hi' }] });
    assert.equal(await gauge(gw, 'lanegate_admission_in_flight', DEPLOYMENT), 1, 'the open stream holds the slot');
    // One waits behind it and its client gives up while queued.
    const queued = new AbortController();
    const gaveUp = postChat(gw, { model: 'slow' }, {}).then(() => undefined);
    void gaveUp;
    const abandoned = fetch(`${gw.baseURL}/chat/completions`, {
      method: 'POST',
      signal: queued.signal,
      headers: { authorization: `Bearer ${APP_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'slow', messages: [{ role: 'user', content: 'gone' }] }),
    }).catch(() => 'aborted');
    await waitFor('two queued', async () => ((await gauge(gw!, 'lanegate_admission_queued', DEPLOYMENT)) === 2 ? true : undefined), 10_000);
    queued.abort();
    assert.equal(await abandoned, 'aborted');
    await waitFor('the abandoned one to leave the queue', async () => ((await gauge(gw!, 'lanegate_admission_queued', DEPLOYMENT)) === 1 ? true : undefined), 10_000);
    for await (const chunk of stream) void chunk;
    await gaveUp;

    // A stream the client leaves halfway.
    const leaving = new AbortController();
    const half = await client.chat.completions.create({ model: 'slow', stream: true, messages: [{ role: 'user', content: 'hi' }] }, { signal: leaving.signal });
    try {
      for await (const chunk of half) {
        void chunk;
        leaving.abort();
      }
    } catch {
      // the SDK reports the abort it was asked for
    }
    // An upstream error and an upstream timeout.
    upstream.always({ status: 500 });
    assert.equal((await postChat(gw, { model: 'slow' })).status, 502);
    upstream.always({ delayMs: 1000 });
    assert.equal((await postChat(gw, { model: 'tight' })).status, 504);

    for (const gate of [DEPLOYMENT, 'global']) {
      await waitFor(`${gate} to have nothing in flight`, async () => ((await gauge(gw!, 'lanegate_admission_in_flight', gate)) === 0 ? true : undefined), 10_000);
      assert.equal(await gauge(gw, 'lanegate_admission_queued', gate), 0);
    }
  });

  it('breaker – a half-open probe shed by the deployment gate is given back, so the next request probes instead of finding the breaker stuck', async () => {
    gw = await startTestGateway({
      yaml: routingConfig(`
providers:
  up: ${openaiProvider(upstream.url, 'retry: { max_retries: 0 }, breaker: { consecutive_failures: 1, cooldown_ms: 300 }, timeouts: { first_byte_ms: 10000, total_ms: 60000 }')}
models:
  slow: { deployments: [{ provider: up, model: m }] }
admission:
  queue_timeout_ms: 2000
  deployments: { "${DEPLOYMENT}": { max_inflight: 2, max_queue: 1 } }
`),
    });
    const client = new OpenAI({ apiKey: APP_KEY, baseURL: gw.baseURL, maxRetries: 0 });
    const stalled = (signal: AbortSignal) => client.chat.completions.create({ model: 'slow', stream: true, messages: [{ role: 'user', content: 'hold' }] }, { signal });
    // Two stalled streams hold both slots; a failure between them opens the breaker. The second never
    // sends content, so no success of its own closes the breaker again.
    upstream.script({ stallAfterChunks: 2 }, { status: 500, delayMs: 500 }, { stallAfterChunks: 1 });
    const holders = [new AbortController(), new AbortController()];
    const firstHolder = await stalled(holders[0]!.signal);
    const failing = postChat(gw, { model: 'slow' });
    await waitFor('the failing request upstream', () => (upstream.calls.length === 2 ? true : undefined), 10_000);
    const secondHolder = stalled(holders[1]!.signal);
    await waitFor('the second holder queued', async () => ((await gauge(gw!, 'lanegate_admission_queued', DEPLOYMENT)) === 1 ? true : undefined), 10_000);
    assert.equal((await failing).status, 502);
    await waitFor('the second holder upstream', () => (upstream.calls.length === 3 ? true : undefined), 10_000);
    assert.equal(await metricValue(gw, `lanegate_breaker_state{deployment="${DEPLOYMENT}"}`), 2, 'the 500 opened the breaker');
    await new Promise((r) => setTimeout(r, 500)); // past the breaker's cool-down: the next attempt is its probe

    // The probe passes the breaker, then finds both slots held and is shed.
    const probe = await postChat(gw, { model: 'slow' });
    assert.equal(probe.status, 503);
    assert.equal(((await probe.json()) as { error: { code: string } }).error.code, 'overloaded');

    // The committed stream leaves (no outcome for the breaker); the other holder stays, so nothing else frees the probe.
    holders[0]!.abort();
    try {
      for await (const chunk of firstHolder) void chunk;
    } catch {
      // aborted on purpose
    }
    await waitFor('a slot given back', async () => ((await gauge(gw!, 'lanegate_admission_in_flight', DEPLOYMENT)) === 1 ? true : undefined), 10_000);
    const next = await postChat(gw, { model: 'slow' });
    assert.equal(next.status, 200, await next.clone().text());
    assert.equal(await metricValue(gw, `lanegate_breaker_state{deployment="${DEPLOYMENT}"}`), 0, 'the new probe succeeded and closed the breaker');
    holders[1]!.abort();
    await secondHolder.catch(() => undefined);
    await waitFor('every slot given back', async () => ((await gauge(gw!, 'lanegate_admission_in_flight', DEPLOYMENT)) === 0 ? true : undefined), 10_000);
  });

  it('hot reload – a new limit applies to new admissions and requests in flight keep their slots', async () => {
    const yaml = (limit: number) => config(upstream.url, `  deployments: { "${DEPLOYMENT}": { max_inflight: ${limit}, max_queue: 0 } }`);
    gw = await startTestGateway({ yaml: yaml(1) });
    upstream.always({ delayMs: 400 });
    assert.deepEqual((await sendAll(gw, [{}, {}, {}])).map((o) => o.status).sort(), [200, 503, 503]);

    await writeFile(gw.configFile, yaml(3).replaceAll('{{dir}}', gw.dir));
    assert.equal((await adminPost(gw, '/admin/reload')).status, 200);
    assert.deepEqual((await sendAll(gw, [{}, {}, {}])).map((o) => o.status), [200, 200, 200]);
    assert.equal(await gauge(gw, 'lanegate_admission_limit', DEPLOYMENT), 3);

    // Lowered while two run: both finish, and the next one waits for the new limit.
    upstream.always({ delayMs: 600 });
    const running = sendAll(gw, [{}, {}]);
    await waitFor('two upstream', () => (upstream.calls.length === 6 ? true : undefined), 10_000);
    await writeFile(gw.configFile, yaml(1).replaceAll('{{dir}}', gw.dir));
    assert.equal((await adminPost(gw, '/admin/reload')).status, 200);
    const late = await sendAll(gw, [{}]);
    assert.equal(late[0]!.status, 503);
    assert.deepEqual((await running).map((o) => o.status), [200, 200]);
  });
});
