// A batch's finalize that takes longer than its lock's lifetime (a slow
// S3 upload of a large output file) keeps the lock: two replicas on one
// Redis, their files in S3 behind a link that takes seconds per upload, the
// lock (claim_idle_ms) a fraction of that; neither replica's sweep starts a
// second finalize, so the output is uploaded once.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { chatLines, outputLines, uploadBatchInput, waitForBatch } from '../helpers/batches.js';
import { startFakeOpenAI, type FakeOpenAI } from '../helpers/fake-openai.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';
import { startS3Link, type S3Link } from '../helpers/s3-link.js';
import { startTestS3, type TestS3 } from '../helpers/s3-server.js';

const UPLOAD_DELAY_MS = 2500;
const LOCK_MS = 300;

describe('batch finalize – the lock outlives a slow finalize', () => {
  let upstream: FakeOpenAI;
  let redis: TestRedis;
  let s3: TestS3;
  let link: S3Link;
  const gateways: TestGateway[] = [];
  before(async () => {
    upstream = await startFakeOpenAI();
    redis = await startRedis();
    s3 = await startTestS3();
    link = await startS3Link(s3.endpoint);
    const extra = `
redis: { url: "${redis.url}", key_prefix: finalize-lock }
queue: { concurrency: 4, claim_idle_ms: ${LOCK_MS}, poll_ms: 20 }
files:
${s3.storeYaml('files').replace(s3.endpoint, link.endpoint)}`;
    for (let i = 0; i < 2; i++) gateways.push(await startTestGateway({ openaiUrl: upstream.url, extra, env: s3.env }));
  });
  after(async () => {
    for (const gw of gateways) await gw.close();
    await link?.close();
    await s3?.close();
    await redis?.stop();
    await upstream?.close();
  });

  it('finalize – a finalize longer than the lock is not started again by a sweep: one output upload', async () => {
    const client = gateways[0]!.client();
    const file = await uploadBatchInput(client, chatLines(6, 'gpt-fake', 'finalize lock '));
    const uploadsBefore = link.uploads.length;
    link.uploadDelayMs = UPLOAD_DELAY_MS;
    const created = await client.batches.create({ input_file_id: file.id, endpoint: '/v1/chat/completions', completion_window: '24h' });
    const batch = await waitForBatch(client, created.id, 30_000);
    link.uploadDelayMs = 0;
    assert.equal(batch.status, 'completed');
    assert.equal((await outputLines(client, batch.output_file_id!)).length, 6);
    // The finalize took UPLOAD_DELAY_MS, many times the lock's lifetime, and both replicas swept meanwhile.
    const files = new Set(link.uploads.slice(uploadsBefore).map((key) => key.replace(/\.jsonl?$/, '')));
    assert.equal(files.size, 1, `files uploaded: ${[...files].join(', ')}`);
  });
});
