import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import OpenAI from 'openai';
import { startFakeOpenAI, type FakeOpenAI } from '../helpers/fake-openai.js';
import { APP_KEY, startTestGateway, UPSTREAM_SECRET, type TestGateway } from '../helpers/gateway.js';

describe('upstream faults', () => {
  let upstream: FakeOpenAI;
  let gw: TestGateway;
  before(async () => {
    upstream = await startFakeOpenAI();
    gw = await startTestGateway({ openaiUrl: upstream.url });
  });
  after(async () => {
    await gw.close();
    await upstream.close();
  });

  const ask = (model = 'gpt-fake') =>
    fetch(`${gw.baseURL}/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${APP_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model, messages: [{ role: 'user', content: 'hi' }] }),
    });

  it('upstream errors – mapped to stable codes, never leaked raw', async () => {
    const cases: Array<[number, number, string, string]> = [
      [401, 502, 'upstream_auth_failed', 'false'],
      [403, 502, 'upstream_auth_failed', 'false'],
      [400, 400, 'upstream_bad_request', 'false'],
      [500, 502, 'upstream_error', 'true'],
      [503, 503, 'upstream_unavailable', 'true'],
    ];
    for (const [upstreamStatus, status, code, retry] of cases) {
      upstream.script({ status: upstreamStatus });
      const res = await ask();
      const body = (await res.json()) as { error: { code: string; message: string } };
      assert.equal(res.status, status, `upstream ${upstreamStatus}`);
      assert.equal(body.error.code, code);
      assert.equal(res.headers.get('x-should-retry'), retry);
      assert.doesNotMatch(JSON.stringify(body), /sk-upstream/, 'upstream body not forwarded');
    }
  });

  it('upstream errors – a 429 stays a 429 with retry-after, as the SDK expects', async () => {
    upstream.script({ status: 429, headers: { 'retry-after': '7' } });
    const res = await ask();
    assert.equal(res.status, 429);
    assert.equal(res.headers.get('retry-after'), '7');
    upstream.script({ status: 429, headers: { 'retry-after': '1' } });
    await assert.rejects(gw.client().chat.completions.create({ model: 'gpt-fake', messages: [{ role: 'user', content: 'x' }] }), OpenAI.RateLimitError);
  });

  it('upstream errors – garbage and a dropped socket become 502/503 with a clean error', async () => {
    upstream.script({ garbage: true });
    const garbage = await ask();
    assert.equal(garbage.status, 502);
    assert.equal(((await garbage.json()) as { error: { code: string } }).error.code, 'upstream_error');
    upstream.script({ dropSocket: true });
    const dropped = await ask();
    assert.equal(dropped.status, 503);
    assert.equal(((await dropped.json()) as { error: { code: string } }).error.code, 'upstream_unavailable');
  });

  it('fallback – a refused connection moves on to the next deployment and both attempts are recorded', async () => {
    const res = await ask('chain');
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('x-gateway-deployment'), 'fakeopenai/gpt-4o-mini');
    const id = res.headers.get('x-request-id');
    const record = (await gw.auditRecords()).find((r) => r.id === id)!;
    const attempts = record.attempts as Array<{ deployment: string; code?: string; errorClass?: string }>;
    assert.equal(attempts.length, 2);
    assert.equal(attempts[0]!.deployment, 'refused/gpt-4o-mini');
    assert.equal(attempts[0]!.errorClass, 'connect');
    assert.equal(attempts[1]!.code, undefined);
  });

  it('stream – a stream cut by the provider ends with one error event, never a clean finish', async () => {
    upstream.script({ breakStreamAfterChunks: 3 });
    const res = await fetch(`${gw.baseURL}/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${APP_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'gpt-fake', stream: true, messages: [{ role: 'user', content: 'a long answer here' }] }),
    });
    assert.equal(res.status, 200);
    const text = await res.text();
    const events = text.split('\n\n').filter(Boolean);
    const errors = events.filter((e) => e.includes('"error"'));
    assert.equal(errors.length, 1);
    assert.equal(events.at(-1), 'data: [DONE]');
    assert.ok(!text.includes('"finish_reason":"stop"'));
    // the SDK raises it
    upstream.script({ breakStreamAfterChunks: 3 });
    const stream = await gw.client().chat.completions.create({ model: 'gpt-fake', stream: true, messages: [{ role: 'user', content: 'x y z w' }] });
    await assert.rejects(async () => {
      for await (const _ of stream) void _;
    }, OpenAI.APIError);
  });

  it('stream – a client that disconnects mid-stream aborts the upstream request', async () => {
    // The stream stops after its first content chunk and stays open: only the client's leaving ends it before the gateway's timeout.
    upstream.script({ stallAfterChunks: 2 });
    const abortedBefore = upstream.aborted;
    const controller = new AbortController();
    const res = await fetch(`${gw.baseURL}/chat/completions`, {
      method: 'POST',
      signal: controller.signal,
      headers: { authorization: `Bearer ${APP_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'gpt-fake', stream: true, messages: [{ role: 'user', content: 'w1 w2 w3 w4 w5 w6 w7 w8 w9 w10' }] }),
    });
    const reader = res.body!.getReader();
    await reader.read();
    controller.abort();
    // Bounded waits, not timings: the upstream sees the close, then the record is written. The stream ended without
    // usage, so the record waits for the delivered text to be counted, and a process's first count loads tiktoken on
    // the event loop: seconds on a busy machine (9 s seen under load 19).
    let deadline = Date.now() + 10_000;
    while (upstream.aborted === abortedBefore && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.equal(upstream.aborted, abortedBefore + 1, 'upstream connection was closed');
    const id = res.headers.get('x-request-id');
    let record: Record<string, unknown> | undefined;
    deadline = Date.now() + 60_000;
    while (!record && Date.now() < deadline) {
      record = (await gw.auditRecords()).find((r) => r.id === id);
      if (!record) await new Promise((r) => setTimeout(r, 20));
    }
    assert.equal(record?.client_disconnected, true);
  });

  it('non-stream – a client that disconnects while the answer is being generated aborts the upstream request', async () => {
    // The upstream holds its answer until the test ends: only the client's leaving, or the gateway's own first-byte
    // timeout (which ends the request as an upstream error, not as aborted), can end the call.
    let answer = () => {};
    upstream.script({ holdUntil: new Promise<void>((resolve) => (answer = resolve)) });
    try {
      const abortedBefore = upstream.aborted;
      const callsBefore = upstream.calls.length;
      const endedAborted = async () => {
        const text = await (await fetch(`${gw.url}/metrics`)).text();
        return text.split('\n').filter((l) => l.startsWith('lanegate_requests_total{') && l.includes('status_class="aborted"')).reduce((n, l) => n + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
      };
      const abortedRequestsBefore = await endedAborted();
      const controller = new AbortController();
      const pending = fetch(`${gw.baseURL}/chat/completions`, {
        method: 'POST',
        signal: controller.signal,
        headers: { authorization: `Bearer ${APP_KEY}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'gpt-fake', messages: [{ role: 'user', content: 'take your time' }] }),
      });
      // Left while the upstream works on it: once the call is there, however long the gateway took to send it.
      const deadline = Date.now() + 10_000;
      while (upstream.calls.length === callsBefore && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      assert.equal(upstream.calls.length, callsBefore + 1, 'the request reached the upstream');
      controller.abort();
      await assert.rejects(pending);
      while (upstream.aborted === abortedBefore && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      assert.equal(upstream.aborted, abortedBefore + 1, 'upstream connection was closed');
      let aborted = await endedAborted();
      while (aborted === abortedRequestsBefore && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 20));
        aborted = await endedAborted();
      }
      assert.equal(aborted, abortedRequestsBefore + 1, 'the request ended as the client left, not at the gateway\'s timeout');
    } finally {
      answer();
    }
  });

  it('secrets – neither the app key nor the provider key appears in logs', async () => {
    upstream.script({ status: 401 });
    await ask();
    const logs = gw.logs();
    assert.ok(logs.includes('"msg":"request"'), 'access log written');
    assert.ok(!logs.includes(UPSTREAM_SECRET), 'provider key not logged');
    assert.ok(!logs.includes(APP_KEY), 'app key not logged');
  });
});
