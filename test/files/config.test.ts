// The `files:` section: load errors that name the fix, and which settings a
// reload can change (limits) and which need a restart (where files are kept).
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { describe, it } from 'node:test';
import { checkGatewayConfig } from '../../src/config/load.js';
import { APP_KEY, startTestGateway } from '../helpers/gateway.js';
import { toFile } from 'openai';

const BASE = 'auth: { mode: none }\nproviders: { mock: { type: mock } }\nmodels: { fast: { deployments: [{ provider: mock, model: m }] } }\n';

describe('files config', () => {
  it('check – store s3 without a bucket, and a bucket name S3 would refuse, are load errors naming the key', () => {
    const noBucket = checkGatewayConfig(`${BASE}files: { store: s3 }\n`, 'gateway.yaml', {});
    assert.ok(noBucket.problems.some((p) => p.path === 'files.s3' && /files\.s3\.bucket/.test(p.message)), JSON.stringify(noBucket.problems));
    const badName = checkGatewayConfig(`${BASE}files: { store: s3, s3: { bucket: "No_Such" } }\n`, 'gateway.yaml', {});
    assert.ok(badName.problems.some((p) => p.path === 'files.s3.bucket'), JSON.stringify(badName.problems));
    const ok = checkGatewayConfig(BASE, 'gateway.yaml', {});
    assert.deepEqual(ok.problems, []);
    assert.equal(ok.config!.files.store, 'local');
    assert.equal(ok.config!.files.max_bytes, 200 * 1024 * 1024);
    assert.equal(ok.config!.files.max_lines, 50_000);
  });

  it('reload – a new limit applies to the next upload; moving the store is named as needing a restart', async () => {
    const gw = await startTestGateway({ extra: 'files:\n  dir: {{dir}}/files\n  max_lines: 2\n' });
    try {
      const client = gw.client(APP_KEY);
      const text = [1, 2, 3].map((i) => JSON.stringify({ custom_id: `c${i}`, method: 'POST', url: '/v1/embeddings', body: { model: 'embed-mock', input: 'x' } })).join('\n');
      const upload = async () => client.files.create({ file: await toFile(Buffer.from(text), 'in.jsonl'), purpose: 'batch' });
      await assert.rejects(upload(), (err: { status?: number }) => err.status === 400);
      const yaml = await readFile(gw.configFile, 'utf8');
      await writeFile(gw.configFile, yaml.replace('max_lines: 2', 'max_lines: 3').replace(`dir: ${gw.dir}/files`, `dir: ${gw.dir}/elsewhere`));
      const result = await gw.gateway.reload();
      assert.deepEqual(result, { ok: true, restart_required: ['files.dir'] });
      const file = await upload();
      assert.equal(file.bytes, Buffer.byteLength(text));
    } finally {
      await gw.close();
    }
  });
});

describe('files store loading', () => {
  it('s3 – the AWS SDK is imported only dynamically, so a gateway that keeps files locally never loads it', async () => {
    const { readdir } = await import('node:fs/promises');
    const path = await import('node:path');
    const src = path.resolve(import.meta.dirname, '../../src');
    const files = (await readdir(src, { recursive: true })).filter((f) => f.endsWith('.ts'));
    const eager: string[] = [];
    let dynamic = 0;
    for (const f of files) {
      const text = await readFile(path.join(src, f), 'utf8');
      if (/^\s*(import|export)\s+(?!type\b)[^;]*?from\s+['"]@aws-sdk\//m.test(text) || /^\s*import\s+['"]@aws-sdk\//m.test(text)) eager.push(f);
      if (/\bimport\(\s*['"]@aws-sdk\/client-s3['"]\s*\)/.test(text)) dynamic++;
    }
    assert.deepEqual(eager, []);
    assert.equal(dynamic, 1, 'the S3 store imports the SDK on first use');
  });
});

describe('files uploads in memory', () => {
  it('uploads – beyond files.max_concurrent_uploads an upload is answered 503 overloaded (retryable) without being read', async () => {
    const { request } = await import('node:http');
    const gw = await startTestGateway({ extra: 'files:\n  dir: {{dir}}/files\n  max_concurrent_uploads: 1\n' });
    try {
      // One upload that has sent its head and part of its body, and waits.
      const held = request(`${gw.baseURL}/files`, {
        method: 'POST',
        headers: { authorization: `Bearer ${APP_KEY}`, 'content-type': 'multipart/form-data; boundary=b', 'content-length': 10_000 },
      });
      held.on('error', () => {});
      held.write('--b\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nbatch\r\n');
      held.flushHeaders();
      const client = gw.client(APP_KEY);
      const text = JSON.stringify({ custom_id: 'a', method: 'POST', url: '/v1/embeddings', body: { model: 'embed-mock', input: 'x' } });
      // The held upload is counted once the gateway has its head; until then a second one may still get in.
      let status = 200;
      for (let tries = 0; tries < 50 && status === 200; tries++) {
        try {
          await client.files.create({ file: await toFile(Buffer.from(text), 'in.jsonl'), purpose: 'batch' });
        } catch (err) {
          status = (err as { status: number }).status;
          assert.equal((err as { code: string }).code, 'overloaded');
          assert.equal((err as { headers: Headers }).headers.get('x-should-retry'), 'true');
        }
      }
      assert.equal(status, 503);
      held.destroy();
    } finally {
      await gw.close();
    }
  });
});
