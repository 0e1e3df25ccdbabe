import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { startFakeOpenAI, type FakeOpenAI } from '../helpers/fake-openai.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { APP_KEY, auditRecordFor, openaiProvider, postChat, routingConfig } from '../helpers/routing.js';

// No retries, no breaker and no rest after a 429, so each candidate is called
// exactly once per request and the order of calls is the order of candidates.
const STRICT = 'retry: { max_retries: 0 }, breaker: { enabled: false }, rate_limit_cooldown: { max_ms: 0 }';

describe('fallback', () => {
  let a: FakeOpenAI;
  let b: FakeOpenAI;
  let c: FakeOpenAI;
  let gw: TestGateway;
  before(async () => {
    [a, b, c] = await Promise.all([startFakeOpenAI(), startFakeOpenAI(), startFakeOpenAI()]);
    gw = await startTestGateway({
      yaml: routingConfig(`
providers:
  upA: ${openaiProvider(a.url, STRICT)}
  upB: ${openaiProvider(b.url, STRICT)}
  upC: ${openaiProvider(c.url, STRICT)}
  refused: { type: openai, base_url: "http://127.0.0.1:9/v1", requires_key: false, timeouts: { connect_ms: 1000, first_byte_ms: 1000, total_ms: 2000 }, ${STRICT} }
models:
  trio:
    deployments:
      - { provider: upA, model: m }
      - { provider: upB, model: m }
      - { provider: upC, model: m }
  pair:
    deployments:
      - { provider: upA, model: m }
      - { provider: upB, model: m }
  primary:
    deployments:
      - { provider: upA, model: m }
      - { provider: upB, model: m }
    fallbacks: [backup]
  backup: { deployments: [{ provider: upC, model: backup-m }] }
  refused-first:
    deployments:
      - { provider: refused, model: m }
      - { provider: upC, model: m }
`),
    });
  });
  after(async () => {
    await gw.close();
    await Promise.all([a.close(), b.close(), c.close()]);
  });
  beforeEach(() => {
    for (const f of [a, b, c]) {
      f.calls.length = 0;
      f.always(undefined);
    }
  });

  const counts = () => [a.calls.length, b.calls.length, c.calls.length];
  const ask = (model: string) => postChat(gw, { model });

  it('fallback – A 500, B 429, C ok: tried in order, each once, every attempt audited', async () => {
    a.script({ status: 500 });
    b.script({ status: 429, headers: { 'retry-after': '1' } });
    const res = await ask('trio');
    assert.equal(res.status, 200);
    assert.equal(((await res.json()) as { choices: Array<{ message: { content: string } }> }).choices[0]!.message.content, 'Hello from fake-openai: hi');
    assert.equal(res.headers.get('x-gateway-deployment'), 'upC/m');
    assert.deepEqual(counts(), [1, 1, 1]);
    const record = await auditRecordFor(gw, res.headers.get('x-request-id'));
    assert.deepEqual(
      record.attempts.map((x) => ({ deployment: x.deployment, code: x.code, status: x.status, retry: x.retry, fallback: x.fallback })),
      [
        { deployment: 'upA/m', code: 'upstream_error', status: 500, retry: 0, fallback: false },
        { deployment: 'upB/m', code: 'upstream_rate_limited', status: 429, retry: 0, fallback: true },
        { deployment: 'upC/m', code: undefined, status: 200, retry: 0, fallback: true },
      ],
    );
    assert.equal(record.deployment, 'upC/m');
    assert.equal(record.status, 200);
  });

  it('fallback – an upstream 400 is the request’s fault: one call, no retry, no fallback, the client gets 400', async () => {
    a.script({ status: 400 });
    const res = await ask('trio');
    assert.equal(res.status, 400);
    const body = (await res.json()) as { error: { code: string; message: string } };
    assert.equal(body.error.code, 'upstream_bad_request');
    assert.doesNotMatch(body.error.message, /sk-upstream/);
    assert.deepEqual(counts(), [1, 0, 0]);
    const record = await auditRecordFor(gw, res.headers.get('x-request-id'));
    assert.equal(record.attempts.length, 1);
    assert.equal(record.error_code, 'upstream_bad_request');
  });

  it('fallback – a fallback model is tried only after the model’s own deployments', async () => {
    a.script({ status: 500 });
    b.script({ status: 503 });
    const res = await ask('primary');
    assert.equal(res.status, 200);
    await res.json();
    assert.equal(res.headers.get('x-gateway-deployment'), 'upC/backup-m');
    assert.deepEqual(counts(), [1, 1, 1]);
    assert.equal(c.calls[0]!.body.model, 'backup-m');
    const record = await auditRecordFor(gw, res.headers.get('x-request-id'));
    assert.deepEqual(
      record.attempts.map((x) => x.deployment),
      ['upA/m', 'upB/m', 'upC/backup-m'],
    );
  });

  it('fallback – every candidate failing answers 503 upstream_unavailable with retry-after', async () => {
    a.script({ status: 500 });
    b.script({ status: 502 });
    // A bounded wait: the assertion is that an answer comes, not a hang.
    const res = await fetch(`${gw.baseURL}/chat/completions`, {
      method: 'POST',
      signal: AbortSignal.timeout(5000),
      headers: { authorization: `Bearer ${APP_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'pair', messages: [{ role: 'user', content: 'hi' }] }),
    });
    assert.equal(res.status, 503);
    const body = (await res.json()) as { error: { code: string; type: string; message: string } };
    assert.equal(body.error.code, 'upstream_unavailable');
    assert.equal(body.error.type, 'api_error');
    assert.doesNotMatch(body.error.message, /sk-upstream/);
    const retryAfter = Number(res.headers.get('retry-after'));
    assert.ok(Number.isInteger(retryAfter) && retryAfter >= 1, `retry-after is a positive integer, got ${res.headers.get('retry-after')}`);
    assert.equal(res.headers.get('x-should-retry'), 'true');
    assert.deepEqual(counts(), [1, 1, 0]);
  });

  it('fallback – a refused connection is skipped to the next deployment', async () => {
    const res = await ask('refused-first');
    assert.equal(res.status, 200);
    await res.json();
    assert.equal(res.headers.get('x-gateway-deployment'), 'upC/m');
    assert.deepEqual(counts(), [0, 0, 1]);
    const record = await auditRecordFor(gw, res.headers.get('x-request-id'));
    assert.equal(record.attempts.length, 2);
    assert.equal(record.attempts[0]!.deployment, 'refused/m');
    assert.equal(record.attempts[0]!.errorClass, 'connect');
    assert.equal(record.attempts[1]!.fallback, true);
  });
});
