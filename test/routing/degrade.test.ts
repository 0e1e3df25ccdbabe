import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startFakeOpenAI, type FakeOpenAI } from '../helpers/fake-openai.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { auditRecordFor, openaiProvider, postChat, routingConfig } from '../helpers/routing.js';

describe('degraded mode', () => {
  let cheap: FakeOpenAI;
  let gw: TestGateway;
  before(async () => {
    cheap = await startFakeOpenAI();
    gw = await startTestGateway({
      yaml: routingConfig(`
providers:
  refused: { type: openai, base_url: "http://127.0.0.1:9/v1", requires_key: false, timeouts: { connect_ms: 1000, first_byte_ms: 1000, total_ms: 2000 }, retry: { max_retries: 0 }, breaker: { enabled: false } }
  cheapup: ${openaiProvider(cheap.url, 'retry: { max_retries: 0 }, breaker: { enabled: false }')}
models:
  smart:
    deployments: [{ provider: refused, model: big }]
    degrade: { model: cheap, max_tokens: 5, notice: 'DEGRADED NOTICE' }
  cheap: { deployments: [{ provider: cheapup, model: small }] }
`),
    });
  });
  after(async () => {
    await gw.close();
    await cheap.close();
  });

  it('degrade – every candidate down: the degrade model answers, capped and told so', async () => {
    cheap.calls.length = 0;
    const res = await postChat(gw, { model: 'smart', max_tokens: 100, messages: [{ role: 'user', content: 'explain everything' }] });
    assert.equal(res.status, 200);
    await res.json();
    assert.equal(res.headers.get('x-gateway-degraded'), '1');
    assert.equal(res.headers.get('x-gateway-deployment'), 'cheapup/small');
    assert.equal(cheap.calls.length, 1);
    const sent = cheap.calls[0]!.body as { model: string; max_tokens: number; messages: Array<{ role: string; content: string }> };
    assert.equal(sent.model, 'small');
    assert.equal(sent.max_tokens, 5);
    assert.deepEqual(sent.messages[0], { role: 'system', content: 'DEGRADED NOTICE' });
    assert.deepEqual(sent.messages[1], { role: 'user', content: 'explain everything' });

    const record = await auditRecordFor(gw, res.headers.get('x-request-id'));
    assert.equal(record.degraded, true);
    assert.equal(record.deployment, 'cheapup/small');
    assert.deepEqual(
      record.attempts.map((x) => [x.deployment, x.errorClass ?? 'ok', x.degraded === true]),
      [
        ['refused/big', 'connect', false],
        ['cheapup/small', 'ok', true],
      ],
    );
  });

  it('degrade – a smaller max_tokens from the client is kept', async () => {
    cheap.calls.length = 0;
    const res = await postChat(gw, { model: 'smart', max_tokens: 2 });
    assert.equal(res.status, 200);
    await res.json();
    assert.equal(cheap.calls[0]!.body.max_tokens, 2);
  });

  it('degrade – when the degrade model fails too, the client gets 503 with retry-after', async () => {
    cheap.calls.length = 0;
    cheap.script({ status: 500 });
    const res = await postChat(gw, { model: 'smart' });
    assert.equal(res.status, 503);
    assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'upstream_unavailable');
    assert.ok(Number(res.headers.get('retry-after')) >= 1, `retry-after: ${res.headers.get('retry-after')}`);
    assert.equal(res.headers.get('x-gateway-degraded'), null);
    assert.equal(cheap.calls.length, 1);
    const record = await auditRecordFor(gw, res.headers.get('x-request-id'));
    assert.equal(record.status, 503);
    assert.equal(record.attempts.length, 2);
  });
});
