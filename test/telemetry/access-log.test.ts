// The access log: one JSON line per request, in the logger's own shape, with
// the request's outcome and nothing the app sent but the model name.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { flushAccessLines, writeAccessLine, type AccessFields } from '../../src/telemetry/logger.js';
import { memoryLogger } from '../helpers/logger.js';
import { APP_KEY, defaultTestConfig, startTestGateway, type TestGateway } from '../helpers/gateway.js';

function lines(logs: string): Array<Record<string, unknown>> {
  return logs
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** Access lines are written in batches: wait (bounded) for the one of this request. */
async function lineFor(gw: TestGateway, requestId: string | null): Promise<Record<string, unknown> | undefined> {
  const deadline = Date.now() + 2000;
  for (;;) {
    const found = lines(gw.logs()).find((l) => l.msg === 'request' && l.requestId === requestId);
    if (found || Date.now() > deadline) return found;
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function post(gw: TestGateway, body: unknown): Promise<Response> {
  return fetch(`${gw.baseURL}/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${APP_KEY}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
}

describe('access log', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startTestGateway({});
  });
  after(() => gw.close());

  it('writes one parseable line per request, with its id, outcome and timing', async () => {
    const ok = await post(gw, { model: 'fast', messages: [{ role: 'user', content: 'hello access log' }] });
    assert.equal(ok.status, 200);
    await ok.text();
    const missing = await post(gw, { model: 'no-such-"model"\nx', messages: [{ role: 'user', content: 'hi' }] });
    assert.equal(missing.status, 404);
    await missing.text();

    const first = await lineFor(gw, ok.headers.get('x-request-id'));
    const second = await lineFor(gw, missing.headers.get('x-request-id'));
    lines(gw.logs()); // every line, ours and pino's, parses as JSON
    assert.ok(first, 'the 200 has its line');
    assert.equal(first.level, 'info');
    assert.equal(first.service, 'lanegate');
    assert.ok(!Number.isNaN(Date.parse(String(first.time))));
    assert.equal(first.endpoint, 'chat');
    assert.equal(first.key, 'alpha');
    assert.equal(first.model, 'fast');
    assert.equal(first.status, 200);
    assert.equal(first.stream, false);
    assert.equal(typeof first.ms, 'number');
    assert.equal(typeof first.deployment, 'string');
    assert.equal('code' in first, false, 'undefined fields are left out');
    assert.doesNotMatch(gw.logs(), /hello access log/, 'no body text');
    assert.doesNotMatch(gw.logs(), new RegExp(APP_KEY), 'no key');

    assert.ok(second, 'the 404 has its line');
    assert.equal(second.model, 'no-such-"model"\nx', 'the name asked for is escaped, not able to break the line');
    assert.equal(second.status, 404);
    assert.equal(second.code, 'model_not_found');
  });

  it('keeps every line whole through batches: more lines than one batch holds, non-ASCII names', async () => {
    const names = ['fast', 'modèle-ünknown-名前', `long-${'x'.repeat(100)}`];
    const ids: string[] = [];
    // About 300 bytes a line: more than a 32 KB batch.
    for (let i = 0; i < 150; i++) {
      const res = await post(gw, { model: names[i % names.length], messages: [{ role: 'user', content: `batch ${i}` }] });
      await res.text();
      ids.push(res.headers.get('x-request-id')!);
    }
    for (const [i, id] of ids.entries()) {
      const line = await lineFor(gw, id);
      assert.ok(line, `request ${i} has its line`);
      assert.ok(line.model === names[i % names.length], `request ${i}: the model name logged whole`);
    }
    const logged = lines(gw.logs()).filter((l) => typeof l.requestId === 'string' && ids.includes(l.requestId));
    assert.equal(logged.length, ids.length, 'one line each, none split or repeated');
  });

  it('is silent when the log level is above info', async () => {
    const quiet = await startTestGateway({ yaml: defaultTestConfig({}).replace('  level: info\n', '  level: warn\n') });
    try {
      const res = await post(quiet, { model: 'fast', messages: [{ role: 'user', content: 'hi' }] });
      assert.equal(res.status, 200);
      await res.text();
      assert.equal(await lineFor(quiet, res.headers.get('x-request-id')), undefined);
      assert.equal(lines(quiet.logs()).filter((l) => l.msg === 'request').length, 0);
    } finally {
      await quiet.close();
    }
  });
});

describe('access line text', () => {
  it('is the JSON.stringify of its fields, undefined ones left out, for awkward values', () => {
    const { logger, text } = memoryLogger();
    const cases: AccessFields[] = [
      { requestId: 'r1', endpoint: 'chat', stream: false, status: 200 },
      { requestId: 'r2', endpoint: 'chat', key: 'k', model: 'a "quoted"\nname\\', lane: 'green', rule: 'long', deployment: 'p/m', stream: true, status: 502, code: 'upstream_error', ms: 12.5, clientDisconnected: true },
      { requestId: 'r3', endpoint: 'embeddings', model: 'ünï \ud800 \u0001', stream: false, status: 0, ms: Number.NaN },
      { requestId: 'r4', endpoint: 'chat', key: undefined, model: undefined, stream: false, status: 429, code: 'rate_limited', ms: 0.001, clientDisconnected: undefined },
    ];
    for (const fields of cases) writeAccessLine(logger, fields);
    flushAccessLines(logger);
    const got = text().trim().split('\n');
    assert.equal(got.length, cases.length);
    for (const [i, fields] of cases.entries()) {
      const line = got[i]!;
      const time = (JSON.parse(line) as { time: string }).time;
      assert.equal(line, JSON.stringify({ level: 'info', time, service: 'lanegate', ...fields, msg: 'request' }));
    }
  });
});
