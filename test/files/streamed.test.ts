// BlobStore.putStream, which a batch's output and error files are written
// with (a chunk of results at a time): against the local folder and a real
// S3-compatible server (s3rver), small (one PUT) and past one part (a
// multipart upload), read back byte for byte; and a stream that fails
// midway leaves no object behind.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createLocalBlobStore } from '../../src/files/local-store.js';
import { createS3BlobStore } from '../../src/files/s3-store.js';
import type { BlobStore } from '../../src/files/types.js';
import { startTestS3, type TestS3 } from '../helpers/s3-server.js';

const KEY = `${'a'.repeat(32)}/file-${'b'.repeat(24)}.jsonl`;
const BROKEN = `${'a'.repeat(32)}/file-${'c'.repeat(24)}.jsonl`;

/** `total` bytes of JSONL-ish text in 64 KiB chunks, each chunk different. */
async function* chunks(total: number, o: { failAfter?: number } = {}): AsyncIterable<Buffer> {
  let sent = 0;
  for (let i = 0; sent < total; i++) {
    if (o.failAfter !== undefined && sent >= o.failAfter) throw new Error('the results could not be read');
    const size = Math.min(64 * 1024, total - sent);
    const chunk = Buffer.alloc(size, `{"line":${i}}\n`);
    sent += size;
    yield chunk;
  }
}

async function digest(source: AsyncIterable<Buffer>): Promise<string> {
  const hash = createHash('sha256');
  for await (const c of source) hash.update(c);
  return hash.digest('hex');
}

function suite(name: string, open: () => BlobStore) {
  for (const [what, bytes] of [
    ['small (one put)', 100 * 1024],
    ['past one part (multipart on S3)', 9 * 1024 * 1024 + 123],
  ] as const) {
    it(`${name} – putStream ${what}: read back whole and exact`, async () => {
      const store = open();
      await store.putStream(KEY, chunks(bytes));
      const back = await store.get(KEY);
      assert.equal(back?.length, bytes);
      assert.equal(createHash('sha256').update(back!).digest('hex'), await digest(chunks(bytes)));
      await store.delete(KEY);
    });
  }
  it(`${name} – putStream that fails midway: no object`, async () => {
    const store = open();
    await assert.rejects(store.putStream(BROKEN, chunks(10 * 1024 * 1024, { failAfter: 9 * 1024 * 1024 })), /could not be read/);
    assert.equal(await store.get(BROKEN), undefined);
    assert.ok(!(await store.list('')).includes(BROKEN));
  });
}

describe('blob stores – streamed writes', () => {
  let dir: string;
  let s3: TestS3;
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'lanegate-blob-'));
    s3 = await startTestS3();
  });
  after(async () => {
    await s3.close();
    await rm(dir, { recursive: true, force: true });
  });
  suite('local folder', () => createLocalBlobStore(dir));
  suite('S3 (s3rver)', () =>
    createS3BlobStore({ bucket: s3.bucket, prefix: 'streamed', endpoint: s3.endpoint, region: 'us-east-1', force_path_style: true, access_key_id: s3.accessKeyId, secret_access_key: s3.secretAccessKey }),
  );
});
