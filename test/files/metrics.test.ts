// Files metrics on /metrics: files stored and their bytes by purpose (kept
// current by this gateway's uploads, batch outputs and deletes, and taken
// from the store at start), and uploads refused by reason.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { toFile } from 'openai';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { chatLines, jsonl, waitForBatch } from '../helpers/batches.js';
import { waitFor } from '../helpers/routing.js';
import { startS3Link } from '../helpers/s3-link.js';
import { startTestS3 } from '../helpers/s3-server.js';

async function metric(gw: TestGateway, name: string, labels: string): Promise<number> {
  const text = await (await fetch(`${gw.url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name}{${labels}}`));
  return line ? Number(line.split(' ').at(-1)) : 0;
}

describe('files metrics', () => {
  let gw: TestGateway;
  const extra = (dir: string) => `\nfiles: { dir: "${dir}", max_bytes: 4096 }\nqueue: { poll_ms: 20 }\n`;
  let filesDir: string;
  before(async () => {
    gw = await startTestGateway({ extra: extra('{{dir}}/files') });
    filesDir = `${gw.dir}/files`;
  });
  after(async () => {
    await gw.close();
  });

  it('files metrics – stored files and bytes by purpose follow uploads, batch outputs and deletes; refusals by reason', async () => {
    const client = gw.client();
    const input = jsonl(chatLines(3, 'fast', 'metrics '));
    const uploaded = await client.files.create({ file: await toFile(input, 'in.jsonl'), purpose: 'batch' });
    assert.equal(await metric(gw, 'lanegate_files_stored', 'purpose="batch"'), 1);
    assert.equal(await metric(gw, 'lanegate_files_stored_bytes', 'purpose="batch"'), input.length);

    const batch = await client.batches.create({ input_file_id: uploaded.id, endpoint: '/v1/chat/completions', completion_window: '24h' });
    const done = await waitForBatch(client, batch.id);
    assert.equal(done.status, 'completed');
    const output = await client.files.retrieve(done.output_file_id!);
    assert.equal(await metric(gw, 'lanegate_files_stored', 'purpose="batch_output"'), 1);
    assert.equal(await metric(gw, 'lanegate_files_stored_bytes', 'purpose="batch_output"'), output.bytes);

    await assert.rejects(client.files.create({ file: await toFile(Buffer.alloc(5000, 'x'), 'big.jsonl'), purpose: 'batch' }), (err: { status?: number }) => err.status === 413);
    await assert.rejects(client.files.create({ file: await toFile(Buffer.from('not json\n'), 'bad.jsonl'), purpose: 'batch' }), (err: { status?: number }) => err.status === 400);
    assert.equal(await metric(gw, 'lanegate_files_upload_refusals_total', 'reason="request_too_large"'), 1);
    assert.equal(await metric(gw, 'lanegate_files_upload_refusals_total', 'reason="invalid_request"'), 1);

    await client.files.delete(uploaded.id);
    assert.equal(await metric(gw, 'lanegate_files_stored', 'purpose="batch"'), 0);
    assert.equal(await metric(gw, 'lanegate_files_stored_bytes', 'purpose="batch"'), 0);
  });

  it('files metrics – a gateway started on a store that holds files reports them', async () => {
    const second = await startTestGateway({ extra: extra(filesDir) });
    try {
      // The walk at start is off the start's path: wait for it.
      const until = Date.now() + 10_000;
      while ((await metric(second, 'lanegate_files_stored', 'purpose="batch_output"')) !== 1 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
      assert.equal(await metric(second, 'lanegate_files_stored', 'purpose="batch_output"'), 1);
      assert.equal(await metric(second, 'lanegate_files_stored', 'purpose="batch"'), 0);
    } finally {
      await second.close();
    }
  });
});

describe('files metrics – the walk at start racing uploads', () => {
  it('files metrics – a file stored while the walk at start runs is counted once it ends (the walk listed the store before it)', async () => {
    const s3 = await startTestS3();
    const link = await startS3Link(s3.endpoint);
    const files = (retentionS: number) => `\nfiles:\n${s3.storeYaml('inventory').replace(s3.endpoint, link.endpoint)}  max_retention_s: ${retentionS}\n`;
    try {
      // A file that expires in a second: the walk removes it, and says so in the log once it has ended.
      const first = await startTestGateway({ extra: files(1), env: s3.env });
      let expiresAt: number;
      try {
        expiresAt = (await first.client().files.create({ file: await toFile(jsonl(chatLines(1, 'fast', 'old ')), 'old.jsonl'), purpose: 'batch' })).expires_at!;
      } finally {
        await first.close();
      }
      await waitFor('the file to expire', () => (Date.now() / 1000 > expiresAt + 1 ? true : undefined), 5000);

      const listing = link.holdListings();
      const gw = await startTestGateway({ extra: files(86_400), env: s3.env });
      try {
        // The walk has listed the store (one expired file) and waits for the answer: upload now.
        await listing.held;
        const input = jsonl(chatLines(2, 'fast', 'new '));
        await gw.client().files.create({ file: await toFile(input, 'new.jsonl'), purpose: 'batch' });
        assert.equal(await metric(gw, 'lanegate_files_stored', 'purpose="batch"'), 1);
        listing.release();
        await waitFor('the walk to end', () => (/expired files removed/.test(gw.logs()) ? true : undefined), 10_000);
        assert.equal(await metric(gw, 'lanegate_files_stored', 'purpose="batch"'), 1);
        assert.equal(await metric(gw, 'lanegate_files_stored_bytes', 'purpose="batch"'), input.length);
      } finally {
        await gw.close();
      }
    } finally {
      await link.close();
      await s3.close();
    }
  });
});
