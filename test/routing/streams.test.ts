import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startFakeOpenAI, type FakeOpenAI } from '../helpers/fake-openai.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { auditRecordFor, openaiProvider, postChat, routingConfig } from '../helpers/routing.js';

describe('stream fallback', () => {
  let stalling: FakeOpenAI;
  let cutting: FakeOpenAI;
  let secondary: FakeOpenAI;
  let gw: TestGateway;
  before(async () => {
    [stalling, cutting, secondary] = await Promise.all([startFakeOpenAI(), startFakeOpenAI(), startFakeOpenAI()]);
    gw = await startTestGateway({
      yaml: routingConfig(`
providers:
  stall: ${openaiProvider(stalling.url, 'breaker: { enabled: false }')}
  cut: ${openaiProvider(cutting.url, 'breaker: { enabled: false }')}
  sec: ${openaiProvider(secondary.url, 'breaker: { enabled: false }')}
models:
  stalls-first:
    deployments:
      - provider: stall
        model: primary-m
        retry: { max_retries: 0 }
        timeouts: { first_byte_ms: 300 }
      - { provider: sec, model: secondary-m }
  cut-first:
    deployments:
      # retries left on: after the first content chunk there must be none anyway
      - { provider: cut, model: primary-m }
      - { provider: sec, model: secondary-m }
`),
    });
  });
  after(async () => {
    await gw.close();
    await Promise.all([stalling.close(), cutting.close(), secondary.close()]);
  });

  it('stream – a primary that stalls after its headers is replaced before the first content chunk', async () => {
    stalling.always({ stallAfterHeaders: true });
    const { data: stream, response } = await gw
      .client()
      .chat.completions.create({ model: 'stalls-first', stream: true, messages: [{ role: 'user', content: 'one two three' }] })
      .withResponse();
    let text = '';
    const models = new Set<string>();
    let finish: string | null | undefined;
    for await (const chunk of stream) {
      models.add(chunk.model);
      text += chunk.choices[0]?.delta?.content ?? '';
      finish ??= chunk.choices[0]?.finish_reason;
    }
    assert.equal(text, 'Hello from fake-openai: one two three');
    assert.equal(finish, 'stop');
    assert.deepEqual([...models], ['secondary-m'], 'every chunk came from the secondary');
    assert.equal(response.headers.get('x-gateway-deployment'), 'sec/secondary-m');
    assert.equal(stalling.calls.length, 1);
    assert.equal(secondary.calls.length, 1);

    const record = await auditRecordFor(gw, response.headers.get('x-request-id'));
    assert.deepEqual(
      record.attempts.map((x) => [x.deployment, x.code ?? 'ok']),
      [
        ['stall/primary-m', 'upstream_timeout'],
        ['sec/secondary-m', 'ok'],
      ],
    );
  });

  it('stream – a stream cut after its first chunks ends with one error event and [DONE]; nothing else is called', async () => {
    const secondaryBefore = secondary.calls.length;
    cutting.script({ breakStreamAfterChunks: 3 });
    const res = await postChat(gw, { model: 'cut-first', stream: true, messages: [{ role: 'user', content: 'a long answer comes here' }] });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('x-gateway-deployment'), 'cut/primary-m');
    const text = await res.text();
    const events = text.split('\n\n').filter(Boolean);
    const errors = events.filter((e) => e.includes('"error"'));
    assert.equal(errors.length, 1, text);
    const error = JSON.parse(errors[0]!.slice('data: '.length)) as { error: { code: string } };
    assert.match(error.error.code, /^upstream_/);
    assert.equal(events.at(-1), 'data: [DONE]');
    assert.ok(events.at(-2)!.includes('"error"'), 'the error event comes right before [DONE]');
    assert.ok(events.some((e) => e.includes('Hello')), 'content from before the cut was delivered');
    assert.ok(!text.includes('"finish_reason":"stop"'), 'never a clean finish');
    assert.equal(cutting.calls.length, 1, 'no retry after content was sent');
    assert.equal(secondary.calls.length, secondaryBefore, 'no fallback after content was sent');

    const record = await auditRecordFor(gw, res.headers.get('x-request-id'));
    assert.equal(record.error_code, error.error.code);
    assert.equal(record.attempts.length, 1);
  });
});
