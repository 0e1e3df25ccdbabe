import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startFakeOpenAI, type FakeOpenAI } from '../helpers/fake-openai.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { AUDIT_POLICIES, auditLines, auditTestConfig, postJson, readSse, recordOf, sha256, waitFor, type ChatBody, type Completion, type ErrorBody } from './fixtures.js';

describe('audit record content', () => {
  let upstream: FakeOpenAI;
  let gw: TestGateway;
  before(async () => {
    upstream = await startFakeOpenAI();
    gw = await startTestGateway({ yaml: auditTestConfig({ openaiUrl: upstream.url }), files: { 'policies/lanes.yaml': AUDIT_POLICIES } });
  });
  after(async () => {
    await gw.close();
    await upstream.close();
  });

  it('record – a plain request keeps the body as sent, the answer as received, both hashes, route, lane, attempt and timings', async () => {
    const body = JSON.stringify({
      model: 'gpt-fake',
      messages: [{ role: 'user', content: 'plain audit request' }],
      tools: [{ type: 'function', function: { name: 'search', parameters: { type: 'object', properties: {} } } }],
      metadata: { ticket: 'T-1' },
    });
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    const res = await postJson(gw, body, { traceparent: `00-${traceId}-00f067aa0ba902b7-01` });
    assert.equal(res.status, 200);
    const text = await res.text();
    const record = await recordOf(gw, res.headers.get('x-request-id'));

    assert.equal(record.v, 2);
    assert.deepEqual(record.lane, { name: 'green', reasons: ['key "alpha" starts in green'], bodies: 'full', retention_days: 30 });
    assert.deepEqual(record.route, { name: 'gpt-fake', rule: null, model: 'gpt-fake' });
    assert.equal(record.deployment, 'fakeopenai/gpt-4o-mini');
    assert.equal(record.provider, 'fakeopenai');
    assert.equal(record.response_model, 'gpt-4o-mini');
    assert.equal(record.key_id, 'alpha');
    assert.equal(record.app, 'app-alpha');
    assert.equal(record.team, 'team-alpha');
    assert.equal(record.bodies.mode, 'full');
    assert.deepEqual(record.bodies.request, JSON.parse(body), 'the request exactly as the app sent it');
    assert.deepEqual(record.bodies.response, JSON.parse(text), 'the answer exactly as the app got it');
    assert.equal(record.bodies.request_sha256, sha256(body));
    assert.equal(record.bodies.response_sha256, sha256(text));
    assert.deepEqual(record.tools, { offered: ['search'], called: [] });
    assert.deepEqual(record.usage, { prompt_tokens: 11, completion_tokens: 6, total_tokens: 17 });
    assert.equal(record.attempts.length, 1);
    const [attempt] = record.attempts;
    const { queue_ms: queue, first_byte_ms: firstByte, total_ms: total } = record.timings;
    assert.equal(attempt!.status, 200);
    assert.ok(queue !== null && queue >= 0 && queue === attempt!.startMs);
    assert.ok(firstByte !== null && firstByte >= queue);
    assert.ok(total !== null && total >= firstByte);
    assert.equal(record.trace_id, traceId, 'the app’s trace id links the record to its trace');
    assert.equal(record.stream, false);
    assert.equal(record.status, 200);
  });

  it('record – tool calls the model made are listed with their arguments and a hash of them', async () => {
    const args = '{"query":"weather in Paris"}';
    const res = await postJson(gw, {
      model: 'gpt-fake',
      messages: [{ role: 'user', content: `use tool search args:${args}` }],
      tools: [{ type: 'function', function: { name: 'search' } }],
    });
    assert.equal(res.status, 200);
    await res.text();
    const record = await recordOf(gw, res.headers.get('x-request-id'));
    assert.deepEqual(record.tools.called, [{ id: 'call_fake_1', name: 'search', arguments: args, arguments_sha256: sha256(args) }]);
  });

  it('record – a stream is recorded as the assembled message, not as chunks', async () => {
    const res = await postJson(gw, { model: 'gpt-fake', stream: true, messages: [{ role: 'user', content: 'stream this to the audit trail' }] });
    assert.equal(res.status, 200);
    const { content, events } = await readSse(res);
    assert.ok(events.length > 3, 'several chunks went to the client');
    const record = await recordOf(gw, res.headers.get('x-request-id'));
    assert.equal(record.stream, true);
    const response = record.bodies.response as Completion;
    assert.equal(response.object, 'chat.completion');
    assert.equal(response.choices.length, 1);
    assert.equal(response.choices[0]!.message.content, content);
    assert.equal(response.choices[0]!.finish_reason, 'stop');
    assert.equal(record.bodies.response_sha256, sha256(JSON.stringify(response)));
    assert.ok(record.usage!.completion_tokens > 0);
    assert.ok(record.timings.first_byte_ms! > 0);
  });

  it('record – a fallback keeps every attempt in order, with the error of the one that failed', async () => {
    const res = await postJson(gw, { model: 'chain', messages: [{ role: 'user', content: 'fall back please' }] });
    assert.equal(res.status, 200);
    await res.text();
    const record = await recordOf(gw, res.headers.get('x-request-id'));
    assert.deepEqual(
      record.attempts.map((a) => [a.deployment, a.errorClass ?? 'ok', a.fallback, a.retry]),
      [
        ['refused/gpt-4o-mini', 'connect', false, 0],
        ['fakeopenai/gpt-4o-mini', 'ok', true, 0],
      ],
    );
    const [failed, answered] = record.attempts;
    assert.ok(answered!.startMs! >= failed!.startMs! + failed!.latencyMs - 1);
    assert.equal(record.deployment, 'fakeopenai/gpt-4o-mini');
    assert.equal(record.timings.queue_ms, failed!.startMs);
  });

  it('record – a cache hit says so, calls nothing upstream and still keeps the answer the app got', async () => {
    const body = { model: 'gpt-fake', temperature: 0, messages: [{ role: 'user', content: 'cache me for the audit' }] };
    const first = await postJson(gw, body);
    assert.equal(first.status, 200);
    await first.text();
    const calls = upstream.calls.length;
    const hit = await waitFor('a cache hit', async () => {
      const res = await postJson(gw, body);
      const text = await res.text();
      return res.headers.get('x-gateway-cache') === 'hit' ? { res, text } : undefined;
    });
    assert.equal(upstream.calls.length, calls, 'the hit called nothing upstream');
    const record = await recordOf(gw, hit.res.headers.get('x-request-id'));
    assert.equal(record.cache?.status, 'hit');
    assert.deepEqual(record.attempts, []);
    assert.equal(record.cost?.nano_usd, 0);
    assert.deepEqual(record.bodies.response, JSON.parse(hit.text));
  });

  it('record – a blocked request keeps hashes only, never the value the detector blocked', async () => {
    const secret = 'sk-proj-AbCdEfGhIjKlMnOpQrStUv0123456789';
    const body = JSON.stringify({ model: 'gpt-fake', messages: [{ role: 'user', content: `my key is ${secret}` }] });
    const calls = upstream.calls.length;
    const res = await postJson(gw, body);
    assert.equal(res.status, 400);
    assert.equal(((await res.json()) as ErrorBody).error.code, 'policy_blocked');
    assert.equal(upstream.calls.length, calls);
    const record = await recordOf(gw, res.headers.get('x-request-id'));
    assert.equal(record.error_code, 'policy_blocked');
    assert.equal(record.bodies.mode, 'hash', 'blocked data is not kept even in a full-bodies lane');
    assert.equal(record.bodies.request, null);
    assert.equal(record.bodies.request_sha256, sha256(body));
    assert.deepEqual(record.policy?.findings, [{ detector: 'api_key', action: 'block', count: 1 }]);
    assert.ok(!JSON.stringify(record).includes('AbCdEfGh'), 'no part of the key in the record');
  });

  it('record – a redacted lane keeps what the provider saw, and masks restored values in the answer', async () => {
    const res = await postJson(gw, { model: 'gpt-fake', messages: [{ role: 'user', content: 'write to bob@example.com today' }] }, { 'x-gateway-lane': 'amber' });
    assert.equal(res.status, 200);
    const answer = (await res.json()) as Completion;
    assert.match(answer.choices[0]!.message.content ?? '', /bob@example\.com/, 'the app gets the value back');
    assert.ok(String(upstream.calls.at(-1)!.rawBody).includes('[EMAIL_1]'), 'the provider saw a placeholder');
    const record = await recordOf(gw, res.headers.get('x-request-id'));
    assert.equal(record.lane?.name, 'amber');
    assert.equal(record.bodies.mode, 'redacted');
    assert.equal((record.bodies.request as ChatBody).messages[0]!.content, 'write to [EMAIL_1] today');
    assert.equal((record.bodies.response as Completion).choices[0]!.message.content, 'Hello from fake-openai: write to [EMAIL_1] today');
    assert.equal(record.policy?.redactions, 1);
    assert.ok(!JSON.stringify(record).includes('bob@example.com'), 'the redacted value is nowhere in the record');
  });

  it('record – a red-lane record holds no body text at all: hashes, names and counts only', async () => {
    const marker = 'zebra-quartz-7741';
    const body = JSON.stringify({
      model: 'gpt-fake',
      messages: [{ role: 'user', content: `card 4111 1111 1111 1111, note ${marker}; use tool search args:{"q":"${marker}"}` }],
      tools: [{ type: 'function', function: { name: 'search' } }],
    });
    const res = await postJson(gw, body);
    assert.equal(res.status, 200);
    const answerText = await res.text();
    assert.ok(answerText.includes(marker), 'the app got its answer');
    const id = res.headers.get('x-request-id')!;
    const record = await recordOf(gw, id);
    assert.equal(record.lane?.name, 'red');
    assert.equal(record.bodies.mode, 'hash');
    assert.equal(record.bodies.request, null);
    assert.equal(record.bodies.response, null);
    assert.equal(record.bodies.request_sha256, sha256(body));
    assert.equal(record.bodies.response_sha256, sha256(answerText));
    assert.deepEqual(record.tools.called.map((c) => [c.name, c.arguments]), [['search', null]]);
    // The line on disk, not just the parsed record.
    const lines = [...(await auditLines(path.join(gw.dir, 'audit'))).values()].flat();
    const line = lines.find((l) => l.includes(id))!;
    // The whole card as written, not '4111' alone: the line's hashes and ids are hex, where any 4 digits turn up by chance.
    for (const text of [marker, '4111 1111 1111 1111', 'Hello from fake-openai', 'use tool']) assert.ok(!line.includes(text), `no "${text}" in the red-lane record`);
  });

  it('record – records are chained lines in one file per lane', async () => {
    await gw.gateway.audit.flush();
    const names = [...(await auditLines(path.join(gw.dir, 'audit'))).keys()];
    for (const lane of ['green', 'amber', 'red']) assert.ok(names.some((n) => new RegExp(`^audit-${lane}-\\d{4}-\\d{2}-\\d{2}\\.000\\.jsonl$`).test(n)), names.join(', '));
    const first = (await readFile(path.join(gw.dir, 'audit', names.find((n) => n.includes('-green-'))!), 'utf8')).split('\n')[0]!;
    assert.match(first, /,"prev":"0{64}","hash":"[0-9a-f]{64}"\}$/);
  });
});
