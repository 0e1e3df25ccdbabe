// The Files API through the real gateway with the official openai SDK:
// uploads validated line by line, limits, team scoping, delete, the lane's
// retention and body rule, and the audit records. The same behaviours run
// against both stores: the local folder and an S3-compatible bucket (s3rver).
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import OpenAI, { toFile } from 'openai';
import { APP_KEY, OTHER_KEY, startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { startTestS3, type TestS3 } from '../helpers/s3-server.js';

const POLICIES = `
default_lane: green
lanes:
  green: { rank: 10, deployments: ["*"], audit: { bodies: full, retention_days: 30 } }
  amber: { rank: 20, deployments: ["*"], audit: { bodies: redacted, retention_days: 7 } }
  red: { rank: 30, deployments: [mock], audit: { bodies: hash, retention_days: 365 } }
`;

const MAX_BYTES = 4096;
const MAX_LINES = 5;
const DAY_S = 86_400;

function line(customId: string, url = '/v1/chat/completions', body: Record<string, unknown> = { model: 'fast', messages: [{ role: 'user', content: `SECRET-CONTENT-${customId}` }] }): string {
  return JSON.stringify({ custom_id: customId, method: 'POST', url, body });
}

function jsonl(...lines: string[]): string {
  return lines.join('\n') + '\n';
}

async function upload(client: OpenAI, text: string | Buffer, name = 'input.jsonl', options?: OpenAI.RequestOptions) {
  return client.files.create({ file: await toFile(Buffer.from(text), name), purpose: 'batch' }, options);
}

async function refusal(promise: Promise<unknown>): Promise<InstanceType<typeof OpenAI.APIError>> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof OpenAI.APIError) return err;
    throw err;
  }
  assert.fail('expected the gateway to refuse');
}

async function localKeys(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const team of await readdir(dir).catch(() => [] as string[])) {
    for (const name of await readdir(path.join(dir, team)).catch(() => [] as string[])) out.push(`${team}/${name}`);
  }
  return out.sort();
}

interface StoreUnderTest {
  /** The `files:` block's store lines for one gateway, and the keys that gateway's store holds (given its temp folder). */
  open(): { yaml: string; keys(gatewayDir: string): Promise<string[]> };
  env: Record<string, string>;
}

function filesApiSuite(store: () => StoreUnderTest) {
  let gw: TestGateway;
  let alpha: OpenAI;
  let beta: OpenAI;
  let stored: () => Promise<string[]>;
  const start = async (extra: string) => {
    const s = store().open();
    const g = await startTestGateway({
      extra: `policies: { dir: ./policies }\nfiles:\n${s.yaml}${extra}`,
      files: { 'policies/lanes.yaml': POLICIES },
      env: store().env,
    });
    return { g, keys: () => s.keys(g.dir) };
  };

  before(async () => {
    const started = await start(`  max_bytes: ${MAX_BYTES}\n  max_lines: ${MAX_LINES}\n`);
    gw = started.g;
    stored = started.keys;
    alpha = gw.client(APP_KEY);
    beta = gw.client(OTHER_KEY);
  });
  after(async () => {
    await gw.close();
  });

  it('upload – valid JSONL is stored, retrieved, listed and read back as sent, with one audit record and no content in it', async () => {
    const text = jsonl(line('a'), line('b', '/v1/embeddings', { model: 'embed-mock', input: 'x' }), line('c', '/v1/responses', { model: 'fast', input: 'hi' }));
    const file = await upload(alpha, text, 'nightly.jsonl');
    assert.match(file.id, /^file-[A-Za-z0-9_-]{24}$/);
    assert.equal(file.object, 'file');
    assert.equal(file.purpose, 'batch');
    assert.equal(file.filename, 'nightly.jsonl');
    assert.equal(file.bytes, Buffer.byteLength(text));
    assert.equal(file.status, 'processed');
    assert.equal(file.expires_at, file.created_at + 30 * DAY_S, "green's retention (30 days)");
    assert.deepEqual(await alpha.files.retrieve(file.id), file);
    assert.equal(await (await alpha.files.content(file.id)).text(), text);
    const listed = [];
    for await (const f of alpha.files.list()) listed.push(f);
    assert.ok(listed.some((f) => f.id === file.id));
    assert.deepEqual(Object.keys(listed.find((f) => f.id === file.id)!).sort(), ['bytes', 'created_at', 'expires_at', 'filename', 'id', 'object', 'purpose', 'status']);

    const records = (await gw.auditRecords()).filter((r) => r.kind === 'file');
    const record = records.find((r) => (r.file as { id: string } | null)?.id === file.id)!;
    assert.ok(record, 'an upload record');
    assert.equal(record.action, 'upload');
    assert.equal(record.endpoint, 'POST /v1/files');
    assert.equal(record.team, 'team-alpha');
    assert.equal((record.file as { lines: number }).lines, 3);
    assert.match((record.file as { sha256: string }).sha256, /^[0-9a-f]{64}$/);
    assert.ok(!JSON.stringify(records).includes('SECRET-CONTENT'), 'no content in the audit trail');
  });

  it('upload – a bad line is refused with 400 naming the line, and nothing is stored', async () => {
    const before = await stored();
    const cases: Array<[string, RegExp]> = [
      [jsonl(line('a'), '{"custom_id": "b", "method": "POST",'), /^Line 2 of the file: not valid JSON/],
      [jsonl(line('a'), line('b'), line('c', '/v1/images/generations')), /^Line 3 of the file: url must be one of \/v1\/chat\/completions, \/v1\/embeddings, \/v1\/responses/],
      [jsonl(JSON.stringify({ method: 'POST', url: '/v1/embeddings', body: { model: 'x' } })), /^Line 1 of the file: custom_id must be a non-empty string/],
      [jsonl(line('a'), JSON.stringify({ custom_id: 'b', method: 'GET', url: '/v1/embeddings', body: { model: 'x' } })), /^Line 2 of the file: method must be "POST"/],
      [jsonl(line('a'), JSON.stringify({ custom_id: 'b', method: 'POST', url: '/v1/embeddings', body: [1] })), /^Line 2 of the file: body must be a JSON object/],
      ['\n\n', /holds no request lines/],
    ];
    for (const [text, message] of cases) {
      const err = await refusal(upload(alpha, text));
      assert.equal(err.status, 400);
      assert.equal(err.code, 'invalid_request');
      assert.equal(err.type, 'invalid_request_error');
      assert.match((err.error as { message: string }).message, message);
    }
    assert.deepEqual(await stored(), before);
  });

  it('upload – bad requests get OpenAI-shaped errors: no key, not multipart, no file part, no purpose, a broken form', async () => {
    const before = await stored();
    const post = async (init: RequestInit & { key?: string | null }) => {
      const headers = new Headers(init.headers);
      if (init.key !== null) headers.set('authorization', `Bearer ${init.key ?? APP_KEY}`);
      const res = await fetch(`${gw.baseURL}/files`, { ...init, method: 'POST', headers });
      return { status: res.status, body: (await res.json()) as { error: { code: string; param: string | null; message: string; type: string } } };
    };
    const form = (fields: Record<string, string | Blob>) => {
      const f = new FormData();
      for (const [k, v] of Object.entries(fields)) {
        if (typeof v === 'string') f.append(k, v);
        else f.append(k, v, 'in.jsonl');
      }
      return f;
    };
    const file = new Blob([jsonl(line('a'))]);
    let r = await post({ key: null, body: form({ purpose: 'batch', file }) });
    assert.equal(r.status, 401);
    assert.equal(r.body.error.code, 'invalid_api_key');
    r = await post({ headers: { 'content-type': 'application/json' }, body: JSON.stringify({ purpose: 'batch' }) });
    assert.equal(r.status, 415);
    assert.equal(r.body.error.code, 'unsupported_media_type');
    r = await post({ body: form({ purpose: 'batch' }) });
    assert.equal(r.status, 400);
    assert.equal(r.body.error.param, 'file');
    r = await post({ body: form({ file }) });
    assert.equal(r.status, 400);
    assert.equal(r.body.error.param, 'purpose');
    r = await post({ headers: { 'content-type': 'multipart/form-data; boundary=XyZ' }, body: '--XyZ\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nbatch' });
    assert.equal(r.status, 400);
    assert.equal(r.body.error.code, 'invalid_request');
    assert.match(r.body.error.message, /multipart\/form-data body is malformed/);
    assert.deepEqual(await stored(), before);
  });

  it('upload – a custom_id used twice is refused naming both lines', async () => {
    const err = await refusal(upload(alpha, jsonl(line('x'), line('y'), line('x'))));
    assert.equal(err.status, 400);
    assert.match((err.error as { message: string }).message, /^Line 3 of the file: custom_id "x" was already used on line 1/);
  });

  it('upload – files over the byte or line limit are refused (413, 400) before anything is stored', async () => {
    const before = await stored();
    // Just over the file limit: read in full (the form may be slightly larger), refused by size.
    const big = jsonl(line('a', '/v1/chat/completions', { model: 'fast', input: 'x'.repeat(MAX_BYTES) }));
    let err = await refusal(upload(alpha, big));
    assert.equal(err.status, 413);
    assert.equal(err.code, 'request_too_large');
    assert.match((err.error as { message: string }).message, new RegExp(`limit of ${MAX_BYTES} bytes`));
    // Far over: refused from its declared length, the body never read.
    err = await refusal(upload(alpha, 'x'.repeat(MAX_BYTES + 200 * 1024)));
    assert.equal(err.status, 413);
    assert.equal(err.code, 'request_too_large');
    const lines = Array.from({ length: MAX_LINES + 1 }, (_, i) => JSON.stringify({ custom_id: `l${i}`, method: 'POST', url: '/v1/embeddings', body: { model: 'e' } }));
    err = await refusal(upload(alpha, jsonl(...lines)));
    assert.equal(err.status, 400);
    assert.match((err.error as { message: string }).message, new RegExp(`more than ${MAX_LINES} request lines`));
    assert.deepEqual(await stored(), before);
  });

  it('upload – purposes other than batch are refused; batch_output is the gateway\'s to write', async () => {
    const text = jsonl(line('a'));
    for (const purpose of ['batch_output', 'fine-tune'] as const) {
      const err = await refusal(alpha.files.create({ file: await toFile(Buffer.from(text), 'a.jsonl'), purpose: purpose as 'batch' }));
      assert.equal(err.status, 400);
      assert.equal(err.param, 'purpose');
    }
  });

  it('lanes – expires_at follows the lane; a lane that keeps bodies only as hashes stores no files', async () => {
    const amber = await upload(alpha, jsonl(line('a')), 'a.jsonl', { headers: { 'x-gateway-lane': 'amber' } });
    assert.equal(amber.expires_at, amber.created_at + 7 * DAY_S);
    const sooner = await alpha.files.create({ file: await toFile(Buffer.from(jsonl(line('a'))), 'a.jsonl'), purpose: 'batch', expires_after: { anchor: 'created_at', seconds: 3600 } });
    assert.equal(sooner.expires_at, sooner.created_at + 3600, 'expires_after may shorten it');
    const tooSoon = await refusal(alpha.files.create({ file: await toFile(Buffer.from(jsonl(line('a'))), 'a.jsonl'), purpose: 'batch', expires_after: { anchor: 'created_at', seconds: 10 } }));
    assert.equal(tooSoon.status, 400);
    assert.equal(tooSoon.param, 'expires_after.seconds');
    const before = await stored();
    const err = await refusal(upload(alpha, jsonl(line('a')), 'a.jsonl', { headers: { 'x-gateway-lane': 'red' } }));
    assert.equal(err.status, 403);
    assert.equal(err.code, 'lane_violation');
    assert.deepEqual(await stored(), before);
    const refused = (await gw.auditRecords()).filter((r) => r.kind === 'file' && r.error_code === 'lane_violation');
    assert.equal(refused.length, 1);
    assert.equal((refused[0]!.lane as { name: string }).name, 'red');
  });

  it('teams – another team\'s key gets 404 in OpenAI\'s shape for every read and the delete, and does not see it listed', async () => {
    const file = await upload(alpha, jsonl(line('a')));
    for (const call of [() => beta.files.retrieve(file.id), () => beta.files.content(file.id), () => beta.files.delete(file.id)]) {
      const err = await refusal(call());
      assert.equal(err.status, 404);
      assert.equal(err.code, 'not_found');
      assert.equal(err.type, 'invalid_request_error');
    }
    const seen = [];
    for await (const f of beta.files.list()) seen.push(f.id);
    assert.ok(!seen.includes(file.id));
    assert.equal((await alpha.files.retrieve(file.id)).id, file.id, 'still there for its team');
  });

  it('delete – removes the file and its bytes, answers OpenAI\'s shape, then 404; audited', async () => {
    const file = await upload(alpha, jsonl(line('a')));
    const stored1 = await stored();
    assert.equal(stored1.filter((k) => k.includes(file.id)).length, 2, 'content and metadata');
    assert.deepEqual(await alpha.files.delete(file.id), { id: file.id, object: 'file', deleted: true });
    assert.equal((await stored()).filter((k) => k.includes(file.id)).length, 0);
    for (const call of [() => alpha.files.retrieve(file.id), () => alpha.files.content(file.id), () => alpha.files.delete(file.id)]) {
      assert.equal((await refusal(call())).status, 404);
    }
    const record = (await gw.auditRecords()).find((r) => r.kind === 'file' && r.action === 'delete' && (r.file as { id: string }).id === file.id);
    assert.ok(record);
    assert.equal(record.endpoint, 'DELETE /v1/files/{id}');
  });

  it('list – purpose filter, limit/after pages in order, and the SDK pages through them all', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await upload(beta, jsonl(line(`p${i}`)))).id);
    const page = await beta.files.list({ limit: 2, order: 'asc' } as OpenAI.FileListParams);
    assert.equal(page.data.length, 2);
    assert.equal(page.has_more, true);
    const all: string[] = [];
    for await (const f of beta.files.list({ limit: 1, order: 'asc' } as OpenAI.FileListParams)) all.push(f.id);
    assert.deepEqual(all.filter((id) => ids.includes(id)), ids, 'oldest first, in upload order');
    const newest = await beta.files.list({ limit: 3 });
    assert.deepEqual(newest.data.map((f) => f.id), ids.slice().reverse(), 'newest first by default');
    const outputs = await beta.files.list({ purpose: 'batch_output' });
    assert.equal(outputs.data.length, 0);
    const bad = await refusal(fetch(`${gw.baseURL}/files?limit=0`, { headers: { authorization: `Bearer ${OTHER_KEY}` } }).then(async (r) => {
      throw new OpenAI.APIError(r.status, await r.json(), undefined, r.headers);
    }));
    assert.equal(bad.status, 400);
  });

  it('retention – an expired file reads as gone, and the sweeper removes expired bytes nobody read', async () => {
    const { g: short, keys } = await start('  max_retention_s: 1\n  sweep_interval_s: 0\n');
    try {
      const client = short.client(APP_KEY);
      const read = await upload(client, jsonl(line('a')));
      const unread = await upload(client, jsonl(line('b')));
      assert.equal(read.expires_at, read.created_at + 1);
      assert.equal((await keys()).length, 4);
      // Wait until the clock passes expires_at (whole seconds), then look.
      while (Math.floor(Date.now() / 1000) < unread.expires_at!) await new Promise((r) => setTimeout(r, 100));
      assert.equal((await refusal(client.files.retrieve(read.id))).status, 404);
      assert.equal((await keys()).filter((k) => k.includes(read.id)).length, 0, 'removed on the read that found it expired');
      assert.equal((await keys()).filter((k) => k.includes(unread.id)).length, 2, 'still held until swept');
      assert.equal(await short.gateway.services.files.sweep(), 1);
      assert.deepEqual(await keys(), []);
      assert.equal((await client.files.list()).data.length, 0);
    } finally {
      await short.close();
    }
  });
}

describe('Files API – local folder store', () => {
  filesApiSuite(() => ({
    open: () => ({ yaml: '  store: local\n  dir: {{dir}}/files\n', keys: (gatewayDir) => localKeys(path.join(gatewayDir, 'files')) }),
    env: {},
  }));
});

describe('Files API – S3-compatible store (s3rver)', () => {
  let s3: TestS3;
  before(async () => {
    s3 = await startTestS3();
  });
  after(async () => {
    await s3.close();
  });
  let gateways = 0;
  filesApiSuite(() => ({
    // Each gateway its own prefix in the one bucket, so their files do not mix.
    open: () => {
      const prefix = `gw${++gateways}`;
      return { yaml: s3.storeYaml(prefix), keys: async () => (await s3.keys()).filter((k) => k.startsWith(`${prefix}/`)).map((k) => k.slice(prefix.length + 1)) };
    },
    env: s3.env,
  }));
});
