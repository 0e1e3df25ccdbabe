import assert from 'node:assert/strict';
import { cp, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createFileReader } from '../../src/audit/read/file-reader.js';
import type { AuditReader, RecordFilter } from '../../src/audit/read/reader.js';
import { createRedisReader } from '../../src/audit/read/redis-reader.js';
import { auditEntrySchema } from '../../src/audit/schema.js';
import { toPending } from '../../src/audit/transport/pending.js';
import { createRedisBackend } from '../../src/audit/transport/redis-sink.js';
import { createRedisClient, type RedisStore } from '../../src/stores/redis.js';
import { createLogger } from '../../src/telemetry/logger.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';
import { AUDIT_POLICIES, auditTestConfig, postJson, waitFor } from './fixtures.js';

async function read(reader: AuditReader, filter: RecordFilter): Promise<Array<{ id: string; time: number; integrity: string; record: Record<string, unknown> }>> {
  const out = [];
  for await (const s of reader.records(filter)) out.push({ id: String(s.record.id), time: s.time, integrity: s.integrity().integrity, record: s.record });
  return out;
}

const ids = (rows: Array<{ id: string }>) => rows.map((r) => r.id).sort();

describe('audit reader over files and Redis streams', () => {
  let gw: TestGateway;
  let redis: TestRedis;
  let store: RedisStore;
  let dir: string;
  let files: AuditReader;
  let streams: AuditReader;
  const answered: string[] = [];
  const copies: string[] = [];

  before(async () => {
    gw = await startTestGateway({ yaml: auditTestConfig(), files: { 'policies/lanes.yaml': AUDIT_POLICIES } });
    for (let i = 0; i < 4; i++) {
      const res = await postJson(gw, { model: 'fast', messages: [{ role: 'user', content: `read back ${i}` }] }, i === 3 ? { 'x-gateway-lane': 'amber' } : {});
      assert.equal(res.status, 200);
      await res.text();
      answered.push(res.headers.get('x-request-id')!);
    }
    await gw.gateway.audit.flush();
    dir = path.join(gw.dir, 'audit');
    files = createFileReader(dir, { files: 'chains' });

    // The same records, written to the streams by the Redis sink's own writer.
    redis = await startRedis();
    store = createRedisClient({ url: redis.url, keyPrefix: 'reader-test', logger: createLogger({ level: 'silent' }) });
    await waitFor('redis ready', () => (store.isReady() ? true : undefined));
    const backend = createRedisBackend({ redis: store, maxLen: 1000, retentionMs: () => 86_400_000 });
    const batch = [];
    for await (const { line } of files.lines({})) batch.push(toPending(auditEntrySchema.parse(JSON.parse(line))));
    assert.deepEqual((await backend.write(batch)).failed, []);
    streams = createRedisReader(store);
  });
  after(async () => {
    await store?.close();
    await redis?.stop();
    await gw?.close();
    for (const c of copies) await rm(c, { recursive: true, force: true });
  });

  it('reader – files and streams yield the same request records, every one checked ok', async () => {
    const fromFiles = await read(files, { kinds: ['request'] });
    const fromStreams = await read(streams, { kinds: ['request'] });
    assert.deepEqual(ids(fromFiles), [...answered].sort());
    assert.deepEqual(ids(fromStreams), ids(fromFiles));
    for (const r of [...fromFiles, ...fromStreams]) assert.equal(r.integrity, 'ok', r.id);
    assert.equal(files.source, dir);
    assert.equal(streams.source, 'redis streams');
  });

  it('reader – a time range is [from, to) on the record time, the same for both', async () => {
    const all = (await read(files, { kinds: ['request'] })).sort((a, b) => a.time - b.time);
    const cut = all[2]!.time;
    for (const reader of [files, streams]) {
      assert.deepEqual(ids(await read(reader, { kinds: ['request'], from: cut })), ids(all.filter((r) => r.time >= cut)), reader.source);
      assert.deepEqual(ids(await read(reader, { kinds: ['request'], to: cut })), ids(all.filter((r) => r.time < cut)), reader.source);
      assert.deepEqual(await read(reader, { from: Date.now() + 86_400_000 }), [], reader.source);
    }
  });

  it('reader – kinds and holding filter; skipBodies leaves the bodies out', async () => {
    assert.deepEqual(await read(files, { kinds: ['shadow_run'] }), []);
    assert.deepEqual(await read(files, { holding: '"no member is named this"' }), []);
    const [head] = await read(files, { kinds: ['request'], holding: '"cost"', skipBodies: true });
    assert.ok(head, 'a request record with a cost');
    assert.equal('bodies' in head.record, false);
    assert.ok(head.record.cost, 'what comes before the bodies is kept');
  });

  it('reader – a record edited in its file reads as a mismatch', async () => {
    const copy = await mkdtemp(path.join(tmpdir(), 'lanegate-reader-'));
    copies.push(copy);
    await cp(dir, copy, { recursive: true });
    const name = (await readdir(copy)).find((n) => /^audit-green-.*\.jsonl$/.test(n))!;
    const file = path.join(copy, name);
    const lines = (await readFile(file, 'utf8')).split('\n');
    const at = lines.findIndex((l) => l.includes(answered[0]!));
    lines[at] = lines[at]!.replace('"status":200', '"status":201');
    await writeFile(file, lines.join('\n'));
    const rows = await read(createFileReader(copy, { files: 'all' }), { kinds: ['request'] });
    assert.equal(rows.find((r) => r.id === answered[0])?.integrity, 'mismatch');
    assert.equal(rows.find((r) => r.id === answered[1])?.integrity, 'ok');
  });
});
