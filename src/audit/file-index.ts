// The per-file index that lets queries read only the records they return.
// For each record: its id, byte offset, time and the fields queries filter
// on. The sink writes a file's index beside it when it closes the file; a
// file without one (a crash, files copied from elsewhere) is indexed by one
// scan on first query, and the index is saved then.
import { createReadStream } from 'node:fs';
import { open, readFile, rename } from 'node:fs/promises';
import { indexPathOf } from './files.js';
import { facetsOf, type Facets } from './pending.js';

export type IndexRow = [id: string, offset: number, time: number, kind: string, team: string | null, app: string | null, lane: string | null, model: string | null, status: number | null];

export interface FileIndex {
  /** Bytes of the file the rows cover. */
  size: number;
  rows: IndexRow[];
}

export function rowOf(f: Facets, offset: number): IndexRow {
  return [f.id, offset, f.time, f.kind, f.team, f.app, f.lane, f.model, f.status];
}

/** Rows serialized per write: ~0.5 ms of work between turns of the event loop. */
const ROWS_PER_WRITE = 1000;

/**
 * Writes the index (`{"v":1,"size":…,"rows":[…]}`) beside its file. A full
 * file's index holds tens of thousands of rows, ~20-30 ms of JSON.stringify
 * in one piece: that would stall every request in flight at each rotation.
 * It is serialized and written a slice of rows at a time instead, the event
 * loop serving requests between slices.
 */
export async function saveIndex(file: string, index: FileIndex): Promise<void> {
  const target = indexPathOf(file);
  const tmp = `${target}.tmp`;
  const handle = await open(tmp, 'w', 0o640);
  try {
    const { rows } = index;
    await handle.write(`{"v":1,"size":${index.size},"rows":[`);
    for (let from = 0; from < rows.length; from += ROWS_PER_WRITE) {
      const slice = JSON.stringify(rows.slice(from, from + ROWS_PER_WRITE));
      await handle.write(`${from > 0 ? ',' : ''}${slice.slice(1, -1)}`);
    }
    await handle.write(']}');
  } finally {
    await handle.close();
  }
  await rename(tmp, target);
}

/** The file's index: the saved one, completed by scanning whatever was appended after it. */
export async function loadIndex(file: string, options: { save: boolean }): Promise<FileIndex> {
  let index: FileIndex = { size: 0, rows: [] };
  try {
    const saved = JSON.parse(await readFile(indexPathOf(file), 'utf8')) as { v?: number; size?: number; rows?: IndexRow[] };
    if (saved.v === 1 && typeof saved.size === 'number' && Array.isArray(saved.rows)) index = { size: saved.size, rows: saved.rows };
  } catch {
    // none yet, or unreadable: rebuilt below
  }
  const handle = await open(file, 'r');
  let size: number;
  try {
    size = (await handle.stat()).size;
  } finally {
    await handle.close();
  }
  if (size < index.size) index = { size: 0, rows: [] }; // the file shrank: the old index lies
  if (size > index.size) {
    const scanned = await scanFile(file, index.size);
    index = { size: scanned.size, rows: [...index.rows, ...scanned.rows] };
    if (options.save) await saveIndex(file, index).catch(() => {});
  }
  return index;
}

/** Indexes complete lines from `start`; a torn last line is left out. */
async function scanFile(file: string, start: number): Promise<FileIndex> {
  const rows: IndexRow[] = [];
  let offset = start;
  let carry: Buffer = Buffer.alloc(0);
  for await (const chunk of createReadStream(file, { start }) as AsyncIterable<Buffer>) {
    let buf = carry.length > 0 ? Buffer.concat([carry, chunk]) : chunk;
    let at = 0;
    for (;;) {
      const nl = buf.indexOf(0x0a, at);
      if (nl < 0) break;
      const line = buf.subarray(at, nl).toString('utf8');
      try {
        rows.push(rowOf(facetsOf(JSON.parse(line) as Record<string, unknown>), offset));
      } catch {
        // not a record (verify reports it); still skipped over
      }
      offset += nl - at + 1;
      at = nl + 1;
    }
    carry = buf.subarray(at);
    buf = carry;
  }
  return { size: offset, rows };
}

/** Reads the line that starts at `offset`. */
export async function readLineAt(file: string, offset: number): Promise<string | undefined> {
  const handle = await open(file, 'r');
  try {
    let size = 16 * 1024;
    for (;;) {
      const buf = Buffer.alloc(size);
      const { bytesRead } = await handle.read(buf, 0, size, offset);
      const nl = buf.subarray(0, bytesRead).indexOf(0x0a);
      if (nl >= 0) return buf.subarray(0, nl).toString('utf8');
      if (bytesRead < size) return undefined;
      size *= 4;
    }
  } finally {
    await handle.close();
  }
}
