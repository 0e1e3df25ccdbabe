import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createSummariser, loadIndex, loadSummary, RowLog, rowOf, saveIndex, type IndexRow } from '../../src/audit/read/file-index.js';
import type { Facets } from '../../src/audit/transport/pending.js';
import { indexPathOf } from '../../src/audit/files.js';

describe('audit file index', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'lanegate-index-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function roundTrip(name: string, rows: IndexRow[]): Promise<void> {
    const file = path.join(dir, name);
    const size = rows.length * 100;
    // loadIndex trusts a saved index that covers the whole file.
    await writeFile(file, Buffer.alloc(size, 0x20));
    await saveIndex(file, { size, rows });
    const saved = JSON.parse(await readFile(indexPathOf(file), 'utf8')) as { summary?: unknown };
    const summary = createSummariser();
    summary.add(rows);
    assert.deepEqual(saved, { v: 1, size, rows, summary: JSON.parse(JSON.stringify(summary.done())) }, 'the saved index is one JSON document, its summary last');
    const loaded = await loadIndex(file, { save: false });
    assert.deepEqual(loaded, { size, rows });
    // The summary reads back from the end of the index alone, only for the file size it covers.
    if (rows.length > 0) {
      const read = await loadSummary(file, size);
      assert.equal(read?.min, Math.min(...rows.map((r) => r[2])));
      assert.equal(read?.max, Math.max(...rows.map((r) => r[2])));
      assert.equal(await loadSummary(file, size + 1), undefined);
    }
  }

  it('index – a full file’s index, written in slices, reads back whole and in order', async () => {
    const rows: IndexRow[] = Array.from({ length: 2503 }, (_, i) => [
      `id-${i}`, i * 100, 1_790_000_000_000 + i, 'request', i % 3 ? 'team-a' : null, 'app "quoted"', 'green', i % 2 ? 'fast' : null, i % 5 ? 200 : null,
    ]);
    await roundTrip('audit-green-2026-11-25.000.jsonl', rows);
  });

  it('index – the open file’s compact rows give back exactly the rows they were given, and save like them', async () => {
    const facets = (i: number): Facets => ({
      // Long and non-ASCII ids: the id buffer has to grow, and ids are bytes, not characters.
      id: `${i % 7 ? 'req' : 'réq-ü'}-${String(i).padStart(6, '0')}-${'x'.repeat(i % 50)}`,
      time: 1_790_000_000_000 + i * 1.5,
      kind: i % 11 ? 'request' : 'purge',
      team: i % 3 ? `team-${i % 4}` : null,
      app: i % 5 ? 'app "quoted"' : null,
      lane: ['green', 'amber', 'red'][i % 3]!,
      model: i % 2 ? 'fast' : null,
      status: i % 13 ? 200 + (i % 400) : null,
    });
    const log = new RowLog();
    const expected: IndexRow[] = [];
    for (let i = 0; i < 2503; i++) {
      log.push(facets(i), i * 123);
      expected.push(rowOf(facets(i), i * 123));
    }
    assert.equal(log.length, 2503);
    assert.deepEqual(log.slice(), expected);
    assert.deepEqual(log.slice(1020, 1030), expected.slice(1020, 1030));
    const file = path.join(dir, 'audit-green-2026-11-26.000.jsonl');
    await writeFile(file, Buffer.alloc(2503 * 123, 0x20));
    await saveIndex(file, { size: 2503 * 123, rows: log });
    assert.deepEqual((await loadIndex(file, { save: false })).rows, expected);
  });

  it('index – one slice exactly, and none at all', async () => {
    const one: IndexRow[] = Array.from({ length: 1000 }, (_, i) => [`r${i}`, i * 100, i, 'request', null, null, 'amber', null, 201]);
    await roundTrip('audit-amber-2026-11-25.000.jsonl', one);
    await roundTrip('audit-red-2026-11-25.000.jsonl', []);
  });

  it('index – saves of one file at once never share a temporary file: the last one is what stays', async () => {
    const file = path.join(dir, 'audit-green-2026-11-27.000.jsonl');
    const rows = (n: number, tag: string): IndexRow[] => Array.from({ length: n }, (_, i) => [`${tag}-${i}`, i * 100, i, 'request', 'team', null, 'green', null, 200]);
    const long = rows(5000, 'first');
    const short = rows(1500, 'second');
    await writeFile(file, Buffer.alloc(5000 * 100, 0x20));
    // The sink closing a file and a query indexing it in the same moment.
    await Promise.all([saveIndex(file, { size: 5000 * 100, rows: long }), saveIndex(file, { size: 1500 * 100, rows: short })]);
    const saved = JSON.parse(await readFile(indexPathOf(file), 'utf8')) as { v: number; size: number; rows: unknown };
    assert.deepEqual({ v: saved.v, size: saved.size, rows: saved.rows }, { v: 1, size: 1500 * 100, rows: short });
    assert.deepEqual((await readdir(dir)).filter((f) => f.endsWith('.tmp')), [], 'no temporary file is left');
  });
});
