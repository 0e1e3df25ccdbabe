import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { connect } from 'node:net';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { brotliCompressSync, constants as zlibConstants, createBrotliCompress, deflateSync, gzipSync } from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import { startFakeOpenAI, type FakeOpenAI } from '../helpers/fake-openai.js';
import { ADMIN_KEY, APP_KEY, OTHER_KEY, defaultTestConfig, startTestGateway, type TestGateway } from '../helpers/gateway.js';
import type { UploadOutcome } from '../helpers/sdk-upload.js';

interface ErrorBody {
  error: { message: string; type: string; param: string | null; code: string };
}

interface RawResponse {
  status: number;
  head: string;
  body: string;
}

const MiB = 1024 * 1024;
const HEADER_TIMEOUT_MS = 2_000;

/** Sends bytes as they are (repeated fields and all) and reads the answer until the gateway closes. */
async function rawRequest(port: number, text: string): Promise<RawResponse> {
  const socket = connect(port, '127.0.0.1');
  socket.on('error', () => {});
  const chunks: Buffer[] = [];
  socket.on('data', (c: Buffer) => chunks.push(c));
  socket.write(text);
  await once(socket, 'close');
  return parseResponse(Buffer.concat(chunks).toString('latin1'));
}

function parseResponse(text: string): RawResponse {
  const end = text.indexOf('\r\n\r\n');
  const head = text.slice(0, end);
  return { status: Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1]), head: head.toLowerCase(), body: text.slice(end + 4) };
}

describe('http edge', () => {
  let upstream: FakeOpenAI;
  let gw: TestGateway;
  before(async () => {
    upstream = await startFakeOpenAI();
    const yaml = defaultTestConfig({ openaiUrl: upstream.url }).replace('body_timeout_ms: 1500', `body_timeout_ms: 1500\n  header_timeout_ms: ${HEADER_TIMEOUT_MS}`);
    gw = await startTestGateway({ yaml });
  });
  after(async () => {
    await gw.close();
    await upstream.close();
  });

  const chatBody = (extra: object = {}) => JSON.stringify({ model: 'gpt-fake', messages: [{ role: 'user', content: 'hi' }], ...extra });

  async function post(body: string | Uint8Array<ArrayBuffer>, headers: Record<string, string> = {}, path = '/v1/chat/completions') {
    const res = await fetch(`${gw.url}${path}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${APP_KEY}`, 'content-type': 'application/json', ...headers },
      body,
    });
    const text = await res.text();
    return { status: res.status, headers: res.headers, text, body: JSON.parse(text) as ErrorBody };
  }

  it('early refusal – an SDK uploading 9 MiB past the limit sees the 413 and the gateway’s JSON, every time', async () => {
    const calls = upstream.calls.length;
    const helper = fileURLToPath(new URL('../helpers/sdk-upload.ts', import.meta.url));
    const stdout = await new Promise<string>((resolve, reject) => {
      execFile(process.execPath, ['--import', 'tsx', helper, gw.baseURL, APP_KEY, '20', String(9 * MiB)], { maxBuffer: MiB }, (err, out) =>
        err ? reject(err) : resolve(out),
      );
    });
    const outcomes = JSON.parse(stdout) as UploadOutcome[];
    assert.equal(outcomes.length, 20);
    for (const [i, outcome] of outcomes.entries()) {
      assert.deepEqual('status' in outcome ? { status: outcome.status, code: outcome.code } : outcome, { status: 413, code: 'request_too_large' }, `try ${i}`);
    }
    assert.equal(upstream.calls.length, calls);
  });

  it('early refusal – the gateway half-closes after the 413 and reads the rest of the upload instead of resetting', async () => {
    const socket = connect(gw.gateway.port, '127.0.0.1');
    let writeError: Error | undefined;
    socket.on('error', (err) => (writeError = err));
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    let halfClosed = false;
    socket.on('end', () => (halfClosed = true));
    await once(socket, 'connect');
    const total = 9 * MiB;
    socket.write(
      `POST /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer ${APP_KEY}\r\nContent-Type: application/json\r\nContent-Length: ${total}\r\n\r\n`,
    );
    const piece = Buffer.alloc(64 * 1024, 0x20);
    for (let sent = 0; sent < total && !socket.destroyed; sent += piece.length) {
      if (!socket.write(piece)) await Promise.race([once(socket, 'drain'), once(socket, 'close')]);
    }
    if (!socket.destroyed) socket.end();
    if (!socket.closed) await once(socket, 'close');
    assert.equal(writeError, undefined, 'the upload was not cut by a reset');
    const res = parseResponse(Buffer.concat(chunks).toString('latin1'));
    assert.equal(res.status, 413);
    assert.match(res.head, /\r\nconnection: close/);
    assert.equal((JSON.parse(res.body) as ErrorBody).error.code, 'request_too_large');
    assert.ok(halfClosed, 'the gateway sent its FIN after the answer');
  });

  it('early refusal – a client that stalls mid-upload after the 413 is closed once the drain time is up', async () => {
    const socket = connect(gw.gateway.port, '127.0.0.1');
    socket.on('error', () => {});
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    await once(socket, 'connect');
    socket.write(
      `POST /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer ${APP_KEY}\r\nContent-Type: application/json\r\nContent-Length: ${9 * MiB}\r\n\r\n{"model":`,
    );
    // server.drain_timeout_ms is 5 s by default; without a bound the connection would stay open.
    const closed = await Promise.race([new Promise<boolean>((resolve) => socket.once('close', () => resolve(true))), sleep(20_000).then(() => false)]);
    socket.destroy();
    assert.ok(closed, 'the gateway closed the stalled connection');
    assert.equal(parseResponse(Buffer.concat(chunks).toString('latin1')).status, 413);
  });

  it('slow headers – a client sending one header line a second is closed soon after the header timeout', async () => {
    const socket = connect(gw.gateway.port, '127.0.0.1');
    socket.on('error', () => {});
    await once(socket, 'connect');
    socket.write('POST /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\n');
    let line = 0;
    const trickle = setInterval(() => socket.write(`X-Slow-${line++}: 1\r\n`), 1_000);
    // Before the fix Node looked at slow connections every 30 s: closed after 30-60 s.
    const closed = await Promise.race([new Promise<boolean>((resolve) => socket.once('close', () => resolve(true))), sleep(5 * HEADER_TIMEOUT_MS).then(() => false)]);
    clearInterval(trickle);
    socket.destroy();
    assert.ok(closed, `closed within ${5 * HEADER_TIMEOUT_MS} ms with a header timeout of ${HEADER_TIMEOUT_MS} ms`);
  });

  it('ambiguous credentials – two Authorization headers, or Authorization and api-key naming different keys, get 401; two Host headers get 400', async () => {
    const calls = upstream.calls.length;
    const body = chatBody();
    const request = (headers: string) =>
      rawRequest(gw.gateway.port, `POST /v1/chat/completions HTTP/1.1\r\n${headers}Content-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`);

    const twoAuth = await request(`Host: localhost\r\nAuthorization: Bearer ${APP_KEY}\r\nAuthorization: Bearer ${OTHER_KEY}\r\n`);
    assert.equal(twoAuth.status, 401, twoAuth.body);
    assert.equal((JSON.parse(twoAuth.body) as ErrorBody).error.code, 'invalid_api_key');

    const mixed = await request(`Host: localhost\r\nAuthorization: Bearer ${APP_KEY}\r\napi-key: ${OTHER_KEY}\r\n`);
    assert.equal(mixed.status, 401, mixed.body);
    assert.equal((JSON.parse(mixed.body) as ErrorBody).error.code, 'invalid_api_key');
    assert.ok(!mixed.body.includes(OTHER_KEY) && !mixed.body.includes(APP_KEY), 'no key in the error');

    const twoHosts = await request(`Host: localhost\r\nHost: evil.example\r\nAuthorization: Bearer ${APP_KEY}\r\n`);
    assert.equal(twoHosts.status, 400, twoHosts.body);
    assert.equal((JSON.parse(twoHosts.body) as ErrorBody).error.code, 'invalid_request');

    const models = await rawRequest(gw.gateway.port, `GET /v1/models HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer ${APP_KEY}\r\nAuthorization: Bearer ${OTHER_KEY}\r\nConnection: close\r\n\r\n`);
    assert.equal(models.status, 401, models.body);
    assert.equal(upstream.calls.length, calls, 'no refused request reached the upstream');

    // The same key in both places is not ambiguous.
    const same = await request(`Host: localhost\r\nAuthorization: Bearer ${APP_KEY}\r\napi-key: ${APP_KEY}\r\n`);
    assert.equal(same.status, 200, same.body);
  });

  it('compressed bodies – gzip, deflate and br are decoded; the upstream gets the request', async () => {
    const body = chatBody({ messages: [{ role: 'user', content: 'compressed hello' }] });
    for (const [encoding, bytes] of [
      ['gzip', gzipSync(body)],
      ['deflate', deflateSync(body)],
      ['br', brotliCompressSync(body)],
      ['x-gzip', gzipSync(body)],
    ] as const) {
      const calls = upstream.calls.length;
      const res = await post(new Uint8Array(bytes), { 'content-encoding': encoding });
      assert.equal(res.status, 200, `${encoding}: ${res.text}`);
      assert.equal(upstream.calls.length, calls + 1);
      assert.equal((upstream.calls.at(-1)!.body.messages as Array<{ content: string }>)[0]!.content, 'compressed hello');
    }
  });

  it('compressed bodies – a gzip or brotli bomb gets 413 without being inflated whole', async () => {
    const calls = upstream.calls.length;
    // 1 MiB of zeros is about 1 KB of gzip: 16 times the 64 KiB limit once inflated.
    const gzipBomb = gzipSync(Buffer.alloc(MiB), { level: 9 });
    const gz = await post(new Uint8Array(gzipBomb), { 'content-encoding': 'gzip' });
    assert.equal(gz.status, 413, gz.text);
    assert.equal(gz.body.error.code, 'request_too_large');

    // 1 GiB of zeros is under 1 KB of brotli.
    const brotli = createBrotliCompress({ params: { [zlibConstants.BROTLI_PARAM_QUALITY]: 4, [zlibConstants.BROTLI_PARAM_LGWIN]: 24 } });
    const out: Buffer[] = [];
    brotli.on('data', (c: Buffer) => out.push(c));
    const zeros = Buffer.alloc(MiB);
    for (let i = 0; i < 1024; i++) if (!brotli.write(zeros)) await once(brotli, 'drain');
    brotli.end();
    await once(brotli, 'end');
    const bomb = Buffer.concat(out);
    assert.ok(bomb.length < 4096, `the bomb is small (${bomb.length} bytes)`);
    const rssBefore = process.memoryUsage().rss;
    const br = await post(new Uint8Array(bomb), { 'content-encoding': 'br' });
    const grown = process.memoryUsage().rss - rssBefore;
    assert.equal(br.status, 413, br.text);
    assert.equal(br.body.error.code, 'request_too_large');
    // The gateway runs in this process: inflating the whole gigabyte would show here.
    assert.ok(grown < 256 * MiB, `memory grew by ${Math.round(grown / MiB)} MiB`);
    assert.equal(upstream.calls.length, calls);
  });

  it('compressed bodies – another encoding gets 415 naming it; corrupt data gets 400', async () => {
    const calls = upstream.calls.length;
    const compress = await post(chatBody(), { 'content-encoding': 'compress' });
    assert.equal(compress.status, 415, compress.text);
    assert.equal(compress.body.error.code, 'unsupported_media_type');
    assert.match(compress.body.error.message, /"compress"/);
    assert.match(compress.body.error.message, /gzip, deflate, br/);
    const zstd = await post(chatBody(), { 'content-encoding': 'zstd' });
    assert.equal(zstd.status, 415);
    assert.match(zstd.body.error.message, /"zstd"/);
    const twice = await post(chatBody(), { 'content-encoding': 'gzip, br' });
    assert.equal(twice.status, 415);
    const corrupt = await post(chatBody(), { 'content-encoding': 'gzip' });
    assert.equal(corrupt.status, 400, corrupt.text);
    assert.equal(corrupt.body.error.code, 'invalid_request');
    assert.match(corrupt.body.error.message, /gzip/);
    assert.equal(upstream.calls.length, calls);
  });

  it('error messages – never repeat what the client sent in a header', async () => {
    const calls = upstream.calls.length;
    const marker = 'MARKER-<script>alert(1)</script>-sk-live-0000';
    const type = await post(chatBody(), { 'content-type': `text/${marker}` });
    assert.equal(type.status, 415);
    assert.equal(type.body.error.code, 'unsupported_media_type');
    assert.ok(!type.text.includes('MARKER'), type.text);
    const encoding = await post(chatBody(), { 'content-encoding': marker });
    assert.equal(encoding.status, 415);
    assert.ok(!encoding.text.includes('MARKER'), encoding.text);
    const key = await post(chatBody(), { authorization: `Bearer ${marker}` });
    assert.equal(key.status, 401);
    assert.ok(!key.text.includes('MARKER'), key.text);
    assert.equal(upstream.calls.length, calls);
  });

  it('cache headers – API and admin answers carry Cache-Control: no-store, errors and streams included', async () => {
    const auth = { authorization: `Bearer ${APP_KEY}` };
    const answers = [
      ['chat', await fetch(`${gw.baseURL}/chat/completions`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: chatBody() })],
      [
        'stream',
        await fetch(`${gw.baseURL}/chat/completions`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: chatBody({ stream: true }) }),
      ],
      ['error', await fetch(`${gw.baseURL}/chat/completions`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: '{' })],
      ['models', await fetch(`${gw.baseURL}/models`, { headers: auth })],
      ['not found', await fetch(`${gw.baseURL}/nope`, { headers: auth })],
      ['admin', await fetch(`${gw.url}/admin/budgets`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } })],
      ['admin refused', await fetch(`${gw.url}/admin/budgets`)],
    ] as const;
    for (const [name, res] of answers) {
      await res.arrayBuffer();
      assert.equal(res.headers.get('cache-control'), 'no-store', name);
    }
  });

  it('parameter ranges – values outside OpenAI’s documented ranges are refused with the param named, before the upstream', async () => {
    const calls = upstream.calls.length;
    const bias = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [String(i), 1]));
    const refused: Array<[object, string, string?]> = [
      [{ presence_penalty: 2.5 }, 'presence_penalty'],
      [{ presence_penalty: -3 }, 'presence_penalty'],
      [{ frequency_penalty: 2.01 }, 'frequency_penalty'],
      [{ frequency_penalty: -2.5 }, 'frequency_penalty'],
      [{ logprobs: true, top_logprobs: 21 }, 'top_logprobs'],
      [{ logprobs: true, top_logprobs: -1 }, 'top_logprobs'],
      [{ top_logprobs: 5 }, 'top_logprobs'],
      [{ logit_bias: { '50256': 101 } }, 'logit_bias.50256'],
      [{ logit_bias: { '50256': -100.5 } }, 'logit_bias.50256'],
      [{ logit_bias: { hello: 1 } }, 'logit_bias.hello'],
      [{ logit_bias: bias(301) }, 'logit_bias'],
      [{ temperature: 2.1 }, 'temperature'],
      [{ temperature: -0.1 }, 'temperature'],
      [{ top_p: 1.5 }, 'top_p'],
      [{ n: 0 }, 'n'],
      [{ n: 129 }, 'n'],
      [{ max_tokens: 0 }, 'max_tokens'],
      [{ max_completion_tokens: 0 }, 'max_completion_tokens'],
      [{ seed: 1.5 }, 'seed'],
      [{ model: 'embed-fake', input: 'x', dimensions: 0 }, 'dimensions', '/v1/embeddings'],
    ];
    for (const [extra, param, path] of refused) {
      const res = await post(path ? JSON.stringify(extra) : chatBody(extra), {}, path);
      assert.equal(res.status, 400, `${JSON.stringify(extra).slice(0, 80)}: ${res.text}`);
      assert.equal(res.body.error.code, 'invalid_request');
      assert.equal(res.body.error.type, 'invalid_request_error');
      assert.equal(res.body.error.param, param, JSON.stringify(extra).slice(0, 80));
    }
    assert.equal(upstream.calls.length, calls, 'no refused request reached the upstream');

    const edges = await post(
      chatBody({ presence_penalty: -2, frequency_penalty: 2, logprobs: true, top_logprobs: 20, logit_bias: { ...bias(299), '100257': -100 }, temperature: 2, top_p: 0, n: 1, seed: -7 }),
    );
    assert.equal(edges.status, 200, edges.text);
    assert.equal(upstream.calls.length, calls + 1);
  });
});
