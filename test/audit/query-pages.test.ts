// An audit search reads what its page needs, not the whole trail: the file
// sink's own backend writes a few thousand records over three chains and
// dozens of rotated files, and the query (as the CLI reads a folder) is
// asked for pages. Each answer is compared with the trail read whole, and
// the files whose rows each search read are counted.
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { indexPathOf } from '../../src/audit/files.js';
import { createFileQuery, type AuditFilter } from '../../src/audit/read/query.js';
import { createFileBackend } from '../../src/audit/transport/file-sink.js';
import { facetsOf, type PendingRecord } from '../../src/audit/transport/pending.js';
import { createLogger } from '../../src/telemetry/logger.js';

const CHAINS = ['green', 'amber', 'red'];
const RECORDS = 3000;
const TEAMS = ['alpha', 'beta', 'gamma'];

interface Written {
  id: string;
  time: number;
  team: string;
  chain: string;
}

const newestFirst = (a: Written, b: Written) => b.time - a.time || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0);

describe('audit query – pages over many files', () => {
  let dir: string;
  const written: Written[] = [];
  let files = 0;

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'lanegate-query-pages-'));
    const backend = createFileBackend({ dir, rotateBytes: 16 * 1024, logger: createLogger({ level: 'silent' }) });
    for (let batch = 0; batch < RECORDS / 50; batch++) {
      const items: PendingRecord[] = [];
      for (let i = 0; i < 50; i++) {
        const n = batch * 50 + i;
        const chain = CHAINS[n % 3]!;
        // `rare` only in the first 30 records: an old team nobody has heard of since.
        const team = n < 30 ? 'rare' : TEAMS[n % TEAMS.length]!;
        // Records are timed when they are written, as the sink's are (never after their write).
        const record = { v: 2, kind: 'request', id: `req-${String(n).padStart(6, '0')}`, time: new Date().toISOString(), team, app: `app-${team}`, model: 'fast', lane: { name: chain }, status: n % 17 === 0 ? 500 : 200, pad: 'x'.repeat(200) };
        written.push({ id: record.id, time: Date.parse(record.time), team, chain });
        items.push({ chain, bytes: Buffer.from(JSON.stringify(record)), facets: facetsOf(record) });
      }
      const outcome = await backend.write(items);
      assert.equal(outcome.failed.length, 0);
      // Batches apart in time, so files close at different moments.
      await new Promise((r) => setTimeout(r, 2));
    }
    await backend.close();
    files = (await readdir(dir)).filter((n) => n.endsWith('.jsonl')).length;
    assert.ok(files >= 60, `the records spread over many files (${files})`);
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  function query() {
    const read: string[] = [];
    return { q: createFileQuery({ dir }, { onRowsRead: (f) => read.push(path.basename(f)) }), read };
  }
  const ids = (data: Array<Record<string, unknown>>) => data.map((r) => String(r.id));
  const expected = (f: (w: Written) => boolean, n: number) => written.filter(f).sort(newestFirst).slice(0, n).map((w) => w.id);

  it('list – the newest page reads the newest files of each chain, not the trail, and is the newest records of all chains', async () => {
    const { q, read } = query();
    const page = await q.list({ limit: 50, order: 'newest' });
    assert.deepEqual(ids(page.data), expected(() => true, 50));
    assert.ok(page.next, 'there are older pages');
    assert.ok(read.length <= CHAINS.length * 2, `read ${read.length} of ${files} files: ${read.join(', ')}`);
    for (const r of page.data) assert.equal(r.integrity, 'ok', 'each record checked against its hash and the next line');
  });

  it('list – following `next` newest first returns every record once, in order, across files and chains', async () => {
    const { q } = query();
    const seen: string[] = [];
    let filter: AuditFilter = { limit: 200, order: 'newest' };
    for (let pages = 0; pages < 100; pages++) {
      const page = await q.list(filter);
      seen.push(...ids(page.data));
      if (!page.next) break;
      const cursor = Buffer.from(page.next, 'base64url').toString('utf8');
      const at = cursor.indexOf(':');
      filter = { ...filter, after: { time: Number(cursor.slice(0, at)), id: cursor.slice(at + 1) } };
    }
    assert.deepEqual(seen, [...written].sort(newestFirst).map((w) => w.id));
  });

  it('list – oldest first (the default) reads the oldest files and returns the oldest records', async () => {
    const { q, read } = query();
    const page = await q.list({ limit: 20 });
    assert.deepEqual(ids(page.data), [...written].sort((a, b) => -newestFirst(a, b)).slice(0, 20).map((w) => w.id));
    assert.ok(read.length < files / 2, `read ${read.length} of ${files} files`);
  });

  it('list – a filter: the right records; once the files are summarised, only files that can match are read', async () => {
    const { q, read } = query();
    const filter: AuditFilter = { limit: 10, order: 'newest', team: 'rare' };
    const first = await q.list(filter);
    assert.deepEqual(ids(first.data), expected((w) => w.team === 'rare', 10));
    read.length = 0;
    const again = await q.list(filter);
    assert.deepEqual(ids(again.data), ids(first.data));
    // `rare` is in the first file of each chain, and maybe the second.
    assert.ok(read.length <= CHAINS.length * 2, `read ${read.length} of ${files} files: ${read.join(', ')}`);
    const lane = await q.list({ limit: 15, order: 'newest', lane: 'red', status: '5xx' });
    assert.deepEqual(ids(lane.data), expected((w) => w.chain === 'red' && Number(w.id.slice(4)) % 17 === 0, 15));
  });

  it('get – with the time the console links carry, an old record is found reading the files of its time', async () => {
    const { q, read } = query();
    const old = written[40]!;
    const record = await q.get(old.id, { time: old.time });
    assert.equal(record?.id, old.id);
    assert.equal(record?.integrity, 'ok');
    assert.ok(read.length <= 3, `read ${read.length} of ${files} files: ${read.join(', ')}`);
    assert.equal((await q.get(old.id))?.id, old.id, 'found without the hint too');
  });
});

describe('audit query – files removed from the trail', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'lanegate-query-removed-'));
    const backend = createFileBackend({ dir, rotateBytes: 8 * 1024, logger: createLogger({ level: 'silent' }) });
    for (let batch = 0; batch < 20; batch++) {
      const items: PendingRecord[] = [];
      for (let i = 0; i < 20; i++) {
        const record = { v: 2, kind: 'request', id: `req-${batch}-${i}`, time: new Date().toISOString(), team: 'alpha', model: 'fast', lane: { name: 'green' }, status: 200, pad: 'x'.repeat(200) };
        items.push({ chain: 'green', bytes: Buffer.from(JSON.stringify(record)), facets: facetsOf(record) });
      }
      assert.equal((await backend.write(items)).failed.length, 0);
    }
    await backend.close();
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('list – a file removed (retention) leaves nothing of itself in memory; what is left is still found', async () => {
    const q = createFileQuery({ dir });
    const trail = async () => (await readdir(dir)).filter((n) => n.endsWith('.jsonl')).sort();
    const names = await trail();
    assert.ok(names.length >= 10, `the records spread over many files (${names.length})`);
    assert.equal((await q.list({ limit: 1000 })).data.length, 400);
    assert.equal(q.kept().summaries, names.length);
    // Retention removes the older half, each file with its index.
    const removed = names.slice(0, names.length / 2);
    for (const name of removed) {
      await rm(path.join(dir, name));
      await rm(indexPathOf(path.join(dir, name)), { force: true });
    }
    const left = (await q.list({ limit: 1000 })).data.length;
    assert.ok(left > 0 && left < 400);
    assert.equal(q.kept().summaries, names.length - removed.length);
    assert.ok(q.kept().rows <= names.length - removed.length);
  });
});
