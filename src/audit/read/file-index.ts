// The per-file index that lets queries read only the records they return.
// For each record: its id, byte offset, time and the fields queries filter
// on. The sink writes a file's index beside it when it closes the file; a
// file without one (a crash, files copied from elsewhere) is indexed by one
// scan on first query, and the index is saved then.
import { createReadStream } from 'node:fs';
import { open, readFile, rename, unlink } from 'node:fs/promises';
import { indexPathOf, writeAll } from '../files.js';
import { facetsOf, type Facets } from '../transport/pending.js';

export type IndexRow = [id: string, offset: number, time: number, kind: string, team: string | null, app: string | null, lane: string | null, model: string | null, status: number | null];

export interface FileIndex {
  /** Bytes of the file the rows cover. */
  size: number;
  rows: IndexRow[];
}

export function rowOf(f: Facets, offset: number): IndexRow {
  return [f.id, offset, f.time, f.kind, f.team, f.app, f.lane, f.model, f.status];
}

/** Rows by position: an IndexRow[] is one, and so is a RowLog. */
export interface RowSource {
  readonly length: number;
  slice(from: number, to: number): IndexRow[];
}

/**
 * The index rows of the file being written, kept compactly until it is
 * closed: numbers in typed arrays, ids in one buffer, and kind, team, app,
 * lane and model as codes into a table of the values seen. As arrays of
 * strings, a full file's rows were some 100,000 heap objects (~7 MB) that
 * every major collection walked again.
 */
export class RowLog implements RowSource {
  #length = 0;
  #offsets = new Float64Array(1024);
  #times = new Float64Array(1024);
  /** An HTTP status + 1 (0 stands for null): well inside 16 bits. */
  #statuses = new Uint16Array(1024);
  /** Five codes a row: kind, team, app, lane, model. */
  #facets = new Uint32Array(1024 * 5);
  /** Where each row's id ends in #ids. */
  #idEnds = new Uint32Array(1024);
  #ids = Buffer.allocUnsafe(64 * 1024);
  readonly #codes = new Map<string | null, number>();
  readonly #values: Array<string | null> = [];

  get length(): number {
    return this.#length;
  }

  push(f: Facets, offset: number): void {
    const i = this.#length;
    if (i === this.#offsets.length) this.#grow();
    this.#offsets[i] = offset;
    this.#times[i] = f.time;
    this.#statuses[i] = f.status === null ? 0 : f.status + 1;
    const at = i * 5;
    this.#facets[at] = this.#code(f.kind);
    this.#facets[at + 1] = this.#code(f.team);
    this.#facets[at + 2] = this.#code(f.app);
    this.#facets[at + 3] = this.#code(f.lane);
    this.#facets[at + 4] = this.#code(f.model);
    const start = i === 0 ? 0 : this.#idEnds[i - 1]!;
    const bytes = Buffer.byteLength(f.id);
    if (start + bytes > this.#ids.length) {
      const ids = Buffer.allocUnsafe(Math.max(this.#ids.length * 2, start + bytes));
      this.#ids.copy(ids, 0, 0, start);
      this.#ids = ids;
    }
    this.#idEnds[i] = start + this.#ids.write(f.id, start);
    this.#length = i + 1;
  }

  slice(from = 0, to = this.#length): IndexRow[] {
    const out: IndexRow[] = [];
    const v = this.#values;
    for (let i = Math.max(0, from); i < Math.min(to, this.#length); i++) {
      const at = i * 5;
      const status = this.#statuses[i]!;
      const id = this.#ids.toString('utf8', i === 0 ? 0 : this.#idEnds[i - 1]!, this.#idEnds[i]!);
      const f = this.#facets;
      out.push([id, this.#offsets[i]!, this.#times[i]!, v[f[at]!] as string, v[f[at + 1]!]!, v[f[at + 2]!]!, v[f[at + 3]!]!, v[f[at + 4]!]!, status === 0 ? null : status - 1]);
    }
    return out;
  }

  #code(value: string | null): number {
    let code = this.#codes.get(value);
    if (code === undefined) {
      code = this.#values.push(value) - 1;
      this.#codes.set(value, code);
    }
    return code;
  }

  #grow(): void {
    const n = this.#offsets.length * 2;
    const grown = <T extends Float64Array | Uint32Array | Uint16Array>(a: T, size: number): T => {
      const b = new (a.constructor as new (n: number) => T)(size);
      b.set(a);
      return b;
    };
    this.#offsets = grown(this.#offsets, n);
    this.#times = grown(this.#times, n);
    this.#statuses = grown(this.#statuses, n);
    this.#facets = grown(this.#facets, n * 5);
    this.#idEnds = grown(this.#idEnds, n);
  }
}

/**
 * What a file's rows hold, saved at the end of its index: the bounds of its
 * record times and the distinct values of each facet (null when there are
 * more than MAX_SUMMARY_VALUES). A search reads it, a few KB from the end
 * of the index, to skip files that cannot hold what it wants.
 */
export interface IndexSummary {
  min: number;
  max: number;
  kinds: string[] | null;
  teams: Array<string | null> | null;
  apps: Array<string | null> | null;
  models: Array<string | null> | null;
  statuses: Array<number | null> | null;
}

export const MAX_SUMMARY_VALUES = 64;

/** Builds a summary a slice of rows at a time. */
export function createSummariser(): { add(rows: readonly IndexRow[]): void; done(): IndexSummary } {
  let min = Infinity;
  let max = -Infinity;
  const sets = { kinds: new Set<string>(), teams: new Set<string | null>(), apps: new Set<string | null>(), models: new Set<string | null>(), statuses: new Set<number | null>() };
  return {
    add(rows) {
      for (const r of rows) {
        if (r[2] < min) min = r[2];
        if (r[2] > max) max = r[2];
        sets.kinds.add(r[3]);
        sets.teams.add(r[4]);
        sets.apps.add(r[5]);
        sets.models.add(r[7]);
        sets.statuses.add(r[8]);
      }
    },
    done() {
      const list = <T>(set: Set<T>) => (set.size > MAX_SUMMARY_VALUES ? null : [...set]);
      return { min, max, kinds: list(sets.kinds), teams: list(sets.teams), apps: list(sets.apps), models: list(sets.models), statuses: list(sets.statuses) };
    },
  };
}

/** Bytes read from the end of an index for its summary. */
const SUMMARY_TAIL_BYTES = 64 * 1024;
const SUMMARY_MARK = '],"summary":';

/**
 * The summary saved at the end of a file's index, if the index is there,
 * has one and covers `size` bytes of the file (an index of a shorter file
 * says nothing of what was appended since).
 */
export async function loadSummary(file: string, size: number): Promise<IndexSummary | undefined> {
  let handle;
  try {
    handle = await open(indexPathOf(file), 'r');
  } catch {
    return undefined;
  }
  try {
    const total = (await handle.stat()).size;
    const length = Math.min(total, SUMMARY_TAIL_BYTES);
    const buf = Buffer.alloc(length);
    await handle.read(buf, 0, length, total - length);
    const text = buf.toString('utf8');
    const at = text.lastIndexOf(SUMMARY_MARK);
    if (at < 0 || !text.endsWith('}}')) return undefined;
    // The index's size is at its head: `{"v":1,"size":N,...`.
    const head = Buffer.alloc(64);
    await handle.read(head, 0, 64, 0);
    const m = /^\{"v":1,"size":(\d+),/.exec(head.toString('latin1'));
    if (!m || Number(m[1]) !== size) return undefined;
    const summary = JSON.parse(text.slice(at + SUMMARY_MARK.length, -1)) as IndexSummary;
    return typeof summary.min === 'number' && typeof summary.max === 'number' ? summary : undefined;
  } catch {
    return undefined;
  } finally {
    await handle.close();
  }
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
export function saveIndex(file: string, index: { size: number; rows: RowSource }): Promise<void> {
  const target = indexPathOf(file);
  // The sink closing a file and a query indexing it can save at once: one
  // waits for the other, so they never write one temporary file together.
  const next = (saving.get(target) ?? Promise.resolve()).catch(() => {}).then(() => writeIndex(target, index));
  saving.set(target, next);
  const forget = () => {
    if (saving.get(target) === next) saving.delete(target);
  };
  next.then(forget, forget);
  return next;
}

/** Saves in flight, by index path. */
const saving = new Map<string, Promise<void>>();

async function writeIndex(target: string, index: { size: number; rows: RowSource }): Promise<void> {
  // The pid keeps another process indexing the same folder (the CLI) off this one's temporary file.
  const tmp = `${target}.${process.pid}.tmp`;
  const handle = await open(tmp, 'w', 0o640);
  try {
    const { rows } = index;
    const summary = createSummariser();
    // writeAll: a short write (a nearly full disk) is finished, never left torn.
    await writeAll(handle, Buffer.from(`{"v":1,"size":${index.size},"rows":[`));
    for (let from = 0; from < rows.length; from += ROWS_PER_WRITE) {
      const part = rows.slice(from, from + ROWS_PER_WRITE);
      summary.add(part);
      const slice = JSON.stringify(part);
      await writeAll(handle, Buffer.from(`${from > 0 ? ',' : ''}${slice.slice(1, -1)}`));
    }
    // Last, so a search reads it from the end of the file without the rows (loadSummary).
    await writeAll(handle, Buffer.from(`${SUMMARY_MARK}${JSON.stringify(summary.done())}}`));
  } catch (err) {
    await handle.close().catch(() => {});
    await unlink(tmp).catch(() => {});
    throw err;
  }
  await handle.close();
  await rename(tmp, target);
}

/** The file's index: the saved one, completed by scanning whatever was appended after it. */
export async function loadIndex(file: string, options: { save: boolean }): Promise<FileIndex> {
  let index: FileIndex = { size: 0, rows: [] };
  try {
    const saved = JSON.parse(await readFile(indexPathOf(file), 'utf8')) as { v?: number; size?: number; rows?: IndexRow[]; summary?: unknown };
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
    const buf = carry.length > 0 ? Buffer.concat([carry, chunk]) : chunk;
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
