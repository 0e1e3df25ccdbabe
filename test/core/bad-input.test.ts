import assert from 'node:assert/strict';
import { request } from 'node:http';
import { after, before, describe, it } from 'node:test';
import OpenAI from 'openai';
import { startFakeOpenAI, type FakeOpenAI } from '../helpers/fake-openai.js';
import { APP_KEY, OTHER_KEY, startTestGateway, type TestGateway } from '../helpers/gateway.js';

interface ErrorBody {
  error: { message: string; type: string; param: string | null; code: string };
}

describe('bad input', () => {
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

  async function post(body: string | Buffer, headers: Record<string, string> = {}, path = '/v1/chat/completions') {
    const res = await fetch(`${gw.url}${path}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${APP_KEY}`, 'content-type': 'application/json', ...headers },
      body: typeof body === 'string' ? body : new Uint8Array(body),
    });
    const text = await res.text();
    return { status: res.status, headers: res.headers, body: JSON.parse(text) as ErrorBody };
  }

  function assertError(r: { status: number; body: ErrorBody; headers: Headers }, status: number, code: string, pattern?: RegExp) {
    assert.equal(r.status, status, JSON.stringify(r.body));
    assert.equal(r.body.error.code, code);
    assert.equal(typeof r.body.error.message, 'string');
    assert.ok('param' in r.body.error && 'type' in r.body.error);
    if (pattern) assert.match(r.body.error.message, pattern);
    assert.ok(r.headers.get('x-request-id'));
  }

  const chat = (extra: object = {}) => JSON.stringify({ model: 'gpt-fake', messages: [{ role: 'user', content: 'hi' }], ...extra });

  it('bad input – each refusal is an OpenAI-shaped error and the upstream is never called', async () => {
    const calls = upstream.calls.length;
    assertError(await post('{"model": "gpt-fake", "messages": ['), 400, 'invalid_json', /not valid JSON/);
    assertError(await post(chat({ messages: 'hello' })), 400, 'invalid_request', /messages/);
    assertError(await post(JSON.stringify({ messages: [{ role: 'user', content: 'x' }] })), 400, 'invalid_request', /model/);
    assertError(await post(chat({ temperature: 'hot' })), 400, 'invalid_request', /temperature/);
    assertError(await post(chat({ max_tokens: -5 })), 400, 'invalid_request', /max_tokens/);
    assertError(await post(chat({ model: 'no-such-model' })), 404, 'model_not_found', /GET \/v1\/models/);
    assertError(await post('[1,2,3]'), 400, 'invalid_request', /JSON object/);
    assertError(await post(''), 400, 'invalid_json', /empty/);
    assertError(await post(chat(), { 'content-type': 'text/plain' }), 415, 'unsupported_media_type');
    assertError(await post(Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d])), 400, 'invalid_json', /UTF-8/);
    const deep = '['.repeat(10_000) + ']'.repeat(10_000);
    assertError(await post(deep), 400, 'invalid_json', /nested deeper/);
    assertError(await post('x'.repeat(70_000)), 413, 'request_too_large');
    assertError(await post(chat({ model: 'embed-fake' })), 400, 'invalid_request', /embeddings/);
    assertError(await post(chat({ model: 'gpt-fake' }), { authorization: `Bearer ${OTHER_KEY}` }), 404, 'model_not_found');
    assert.equal(upstream.calls.length, calls, 'no refused request reached the upstream');
  });

  it('bad input – a chunked body over the limit is refused while reading', async () => {
    const calls = upstream.calls.length;
    const result = await new Promise<{ status: number; body: ErrorBody }>((resolve, reject) => {
      const req = request(`${gw.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${APP_KEY}`, 'content-type': 'application/json', 'transfer-encoding': 'chunked' },
      });
      req.on('response', (res) => {
        let text = '';
        res.on('data', (c) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode!, body: JSON.parse(text) }));
      });
      req.on('error', reject);
      const piece = Buffer.alloc(16 * 1024, 0x20);
      let sent = 0;
      const pump = () => {
        // keep writing well past the 64 KiB limit; the gateway must answer before we stop
        while (sent < 2 * 1024 * 1024) {
          sent += piece.length;
          if (!req.write(piece)) return req.once('drain', pump);
        }
        req.end();
      };
      req.on('error', () => {});
      pump();
    });
    assert.equal(result.status, 413);
    assert.equal(result.body.error.code, 'request_too_large');
    assert.equal(upstream.calls.length, calls);
  });

  it('bad input – a client that never finishes its body gets a 408', async () => {
    const result = await new Promise<{ status: number; body: ErrorBody }>((resolve, reject) => {
      const req = request(`${gw.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${APP_KEY}`, 'content-type': 'application/json', 'content-length': '1000' },
      });
      req.on('response', (res) => {
        let text = '';
        res.on('data', (c) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode!, body: JSON.parse(text) }));
      });
      req.on('error', reject);
      req.write('{"model": "gpt-fake", ');
    });
    assert.equal(result.status, 408);
    assert.equal(result.body.error.code, 'request_timeout');
  });

  it('auth – a missing or unknown key is a 401 the SDK raises as AuthenticationError', async () => {
    const calls = upstream.calls.length;
    const noKey = await post(chat(), { authorization: '' });
    assertError(noKey, 401, 'invalid_api_key', /Missing API key/);
    assert.equal(noKey.headers.get('x-should-retry'), 'false');
    const wrong = new OpenAI({ apiKey: 'sk-wrong', baseURL: gw.baseURL, maxRetries: 0 });
    await assert.rejects(wrong.chat.completions.create({ model: 'gpt-fake', messages: [{ role: 'user', content: 'x' }] }), OpenAI.AuthenticationError);
    // Azure-style clients send the key as api-key
    const azure = await post(chat(), { authorization: '', 'api-key': APP_KEY });
    assert.equal(azure.status, 200);
    assert.equal(upstream.calls.length, calls + 1);
  });

  it('routing – unknown paths and methods get OpenAI-shaped errors', async () => {
    const res = await fetch(`${gw.url}/v1/nope`, { headers: { authorization: `Bearer ${APP_KEY}` } });
    assert.equal(res.status, 404);
    assert.equal(((await res.json()) as ErrorBody).error.code, 'not_found');
    const get = await fetch(`${gw.baseURL}/chat/completions`, { headers: { authorization: `Bearer ${APP_KEY}` } });
    assert.equal(get.status, 405);
    assert.equal(((await get.json()) as ErrorBody).error.code, 'method_not_allowed');
  });

  it('health – healthz and readyz answer', async () => {
    assert.equal((await fetch(`${gw.url}/healthz`)).status, 200);
    const ready = await fetch(`${gw.url}/readyz`);
    assert.equal(ready.status, 200);
    assert.equal(((await ready.json()) as { status: string }).status, 'ready');
  });
});
