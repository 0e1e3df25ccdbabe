// Usage reports over whole UTC days without reading the trail each time: the
// console's spend page. Each file of the folder is read once into a rollup,
// its requests summed per UTC day of their time and per (key, app, team,
// model, provider, lane, client); a file that grew since is read from where
// the last read stopped, one that changed otherwise is read again. A report
// sums the rollups of the days it covers, so it is the report `lanegate
// costs` makes by reading every record (usageReport in ledger.ts), to the
// nano-dollar, and the records whose hash fails are left out and counted the
// same way. The rollups are kept in memory and saved to one file in the
// folder (.usage-rollups.json), so a restart reads only new records.
//
// All of it runs on the gateway's event loop beside requests, so no step
// holds the loop for long: reading yields every SLICE_MS, and the saved file
// is JSON lines (a header per file, its cells in chunks), written and parsed
// a line at a time, never as one JSON text of the whole state (at a million
// records, one JSON.parse of it held the loop for half a second or more).
import { open, readFile, rename, stat } from 'node:fs/promises';
import path from 'node:path';
import { createFilePartReader, jsonlFiles } from '../audit/read/file-reader.js';
import { readLedger, type GroupBy, type UsageIntegrity, type UsageRow } from './ledger.js';

const ROLLUP_FILE = '.usage-rollups.json';
/** The saved file's first line. A file without it (version 1: one JSON text) is not read: the trail is rolled up again. */
const ROLLUP_HEADER = '{"v":2}';
/** Cells or mismatched records per line of the saved file. */
const SAVED_CHUNK = 1_000;
/** The longest the warm-up holds the event loop before letting requests in. */
const SLICE_MS = 10;
const DAY_MS = 86_400_000;
const MISMATCH_IDS = 100;
const DIMENSIONS = ['key', 'app', 'team', 'model', 'provider', 'lane', 'client'] as const satisfies readonly GroupBy[];

/** [day, key, app, team, model, provider, lane, client, requests, input, output, savedInput, savedOutput, nanoUsd] */
type Cell = [string, string, string, string, string, string, string, string, number, number, number, number, number, number];

interface FileRollup {
  /** Bytes read: up to the end of the last complete line. */
  size: number;
  mtimeMs: number;
  /** Keyed by day and the dimensions, in the order first seen. */
  cells: Cell[];
  /** Records whose hash fails, in file order: [day, id, nanoUsd]. */
  mismatched: Array<[string, string, number]>;
  /** The last bytes read (hex): a file that grew with these still in place was appended to, not rewritten. */
  tail: string;
}

const TAIL_BYTES = 80;

async function bytesBefore(file: string, end: number): Promise<string> {
  const handle = await open(file, 'r');
  try {
    const start = Math.max(0, end - TAIL_BYTES);
    const buf = Buffer.alloc(end - start);
    const { bytesRead } = await handle.read(buf, 0, buf.length, start);
    return buf.subarray(0, bytesRead).toString('hex');
  } finally {
    await handle.close();
  }
}

export interface UsageRollups {
  /** The report for [from, to) when both are UTC midnights; undefined otherwise (read the ledger instead). */
  report(from: number, to: number, by: GroupBy): Promise<{ rows: UsageRow[]; total: UsageRow; integrity: UsageIntegrity } | undefined>;
  /** Reads every file not yet rolled up (in the background at start). */
  warm(): Promise<void>;
}

/** Yields to the event loop (after its I/O poll) once a slice's time has run out; cheap to call per record. */
function createSlicer(): { due(): boolean; next(): Promise<void> } {
  let since = performance.now();
  return {
    due: () => performance.now() - since >= SLICE_MS,
    next: () =>
      new Promise<void>((resolve) =>
        setImmediate(() => {
          since = performance.now();
          resolve();
        }),
      ),
  };
}

/** One line of the saved file: a file's header, then its cells and mismatched records in chunks. */
type SavedLine = { file: string; size: number; mtimeMs: number; tail: string } | { cells: Cell[] } | { mismatched: FileRollup['mismatched'] };

const emptyRow = (group: string): UsageRow => ({ group, requests: 0, input_tokens: 0, output_tokens: 0, saved_input_tokens: 0, saved_output_tokens: 0, nano_usd: 0, usd: '' });

/** Offset just past the last newline in [from, size) of the file, or `from` when there is none. */
async function completeEnd(file: string, from: number, size: number): Promise<number> {
  const handle = await open(file, 'r');
  try {
    const chunk = Buffer.alloc(64 * 1024);
    for (let end = size; end > from; ) {
      const start = Math.max(from, end - chunk.length);
      const { bytesRead } = await handle.read(chunk, 0, end - start, start);
      const nl = chunk.subarray(0, bytesRead).lastIndexOf(0x0a);
      if (nl >= 0) return start + nl + 1;
      end = start;
    }
    return from;
  } finally {
    await handle.close();
  }
}

export interface UsageRollupOptions {
  /** False once the gateway is shutting down: no more files are read and nothing is saved (the folder may be going away). */
  running?: () => boolean;
}

export function createUsageRollups(dir: string, o: UsageRollupOptions = {}): UsageRollups {
  const running = o.running ?? (() => true);
  const rollups = new Map<string, FileRollup>();
  let loaded: Promise<void> | undefined;
  let dirty = false;
  /** One update of the rollups at a time: two pages at once read each file once. */
  let updating: Promise<void> = Promise.resolve();

  const slice = createSlicer();

  const load = () =>
    (loaded ??= (async () => {
      let text: string;
      try {
        text = await readFile(path.join(dir, ROLLUP_FILE), 'utf8');
      } catch {
        return; // none yet: every file is read
      }
      if (!text.startsWith(`${ROLLUP_HEADER}\n`)) return;
      const saved = new Map<string, FileRollup>();
      let current: FileRollup | undefined;
      try {
        for (let at = ROLLUP_HEADER.length + 1; at < text.length; ) {
          const nl = text.indexOf('\n', at);
          // No newline: the last line is torn; what came before it is whole.
          if (nl < 0) throw new Error('torn');
          const line = JSON.parse(text.slice(at, nl)) as SavedLine;
          at = nl + 1;
          if ('file' in line) saved.set(path.join(dir, line.file), (current = { size: line.size, mtimeMs: line.mtimeMs, tail: line.tail, cells: [], mismatched: [] }));
          else if ('cells' in line) current!.cells.push(...line.cells);
          else current!.mismatched.push(...line.mismatched);
          if (slice.due()) await slice.next();
        }
      } catch {
        return; // unreadable: every file is read again
      }
      for (const [file, r] of saved) rollups.set(file, r);
    })());

  async function save(): Promise<void> {
    if (!dirty) return;
    dirty = false;
    const target = path.join(dir, ROLLUP_FILE);
    const tmp = `${target}.${process.pid}.tmp`;
    const handle = await open(tmp, 'w', 0o640);
    try {
      let out = `${ROLLUP_HEADER}\n`;
      const put = async (line: SavedLine): Promise<void> => {
        out += `${JSON.stringify(line)}\n`;
        if (out.length < 1024 * 1024 && !slice.due()) return;
        await handle.write(out);
        out = '';
        if (slice.due()) await slice.next();
      };
      for (const [file, r] of rollups) {
        await put({ file: path.relative(dir, file), size: r.size, mtimeMs: r.mtimeMs, tail: r.tail });
        for (let i = 0; i < r.cells.length; i += SAVED_CHUNK) await put({ cells: r.cells.slice(i, i + SAVED_CHUNK) });
        for (let i = 0; i < r.mismatched.length; i += SAVED_CHUNK) await put({ mismatched: r.mismatched.slice(i, i + SAVED_CHUNK) });
      }
      await handle.write(out);
    } finally {
      await handle.close();
    }
    await rename(tmp, target);
  }

  /** Brings one file's rollup up to date with what it holds now. */
  async function update(file: string): Promise<FileRollup | undefined> {
    let st;
    try {
      st = await stat(file);
    } catch {
      rollups.delete(file);
      return undefined;
    }
    let r = rollups.get(file);
    if (r && r.size === st.size && r.mtimeMs === st.mtimeMs) return r;
    // Grown with what was read still in place (the file being written): read on from
    // where the last read stopped. Anything else (rewritten, truncated): again from the start.
    const appended = r !== undefined && st.size > r.size && (await bytesBefore(file, r.size)) === r.tail;
    if (!r || !appended) r = { size: 0, mtimeMs: 0, cells: [], mismatched: [], tail: '' };
    const end = await completeEnd(file, r.size, st.size);
    const index = new Map<string, Cell>();
    for (const c of r.cells) {
      index.set(c.slice(0, 8).join('\u0000'), c);
      if (slice.due()) await slice.next();
    }
    for await (const e of readLedger(createFilePartReader(file, r.size, end))) {
      if (slice.due()) await slice.next();
      const day = new Date(e.time).toISOString().slice(0, 10);
      if (e.integrity === 'mismatch') {
        r.mismatched.push([day, e.id, e.nanoUsd]);
        continue;
      }
      const key = [day, e.key, e.app, e.team, e.model, e.provider, e.lane, e.client].join('\u0000');
      let cell = index.get(key);
      if (!cell) {
        cell = [day, e.key, e.app, e.team, e.model, e.provider, e.lane, e.client, 0, 0, 0, 0, 0, 0];
        index.set(key, cell);
        r.cells.push(cell);
      }
      cell[8]++;
      cell[9] += e.inputTokens;
      cell[10] += e.outputTokens;
      cell[11] += e.savedInputTokens;
      cell[12] += e.savedOutputTokens;
      cell[13] += e.nanoUsd;
    }
    r.size = end;
    r.tail = await bytesBefore(file, end);
    // A file read up to a torn or unfinished last line is read on from there next time.
    r.mtimeMs = end === st.size ? st.mtimeMs : 0;
    rollups.set(file, r);
    dirty = true;
    return r;
  }

  /** Every file's rollup, in the order the ledger reads the files. */
  function updateAll(): Promise<FileRollup[]> {
    const run = updating.then(async () => {
      await load();
      const files = await jsonlFiles(dir);
      const known = new Set(files);
      for (const file of rollups.keys()) {
        if (!known.has(file)) {
          rollups.delete(file); // removed (retention)
          dirty = true;
        }
      }
      const out: FileRollup[] = [];
      for (const file of files) {
        if (!running()) throw new Error('the gateway is shutting down');
        const r = await update(file);
        if (r) out.push(r);
      }
      if (running()) {
        await save().catch(() => {
          // The rollups stay in memory; a restart reads the files again.
        });
      }
      return out;
    });
    updating = run.then(
      () => {},
      () => {},
    );
    return run;
  }

  return {
    async report(from, to, by) {
      if (from % DAY_MS !== 0 || to % DAY_MS !== 0 || to <= from) return undefined;
      const first = new Date(from).toISOString().slice(0, 10);
      const last = new Date(to - DAY_MS).toISOString().slice(0, 10);
      const at = 1 + DIMENSIONS.indexOf(by as (typeof DIMENSIONS)[number]);
      const groups = new Map<string, UsageRow>();
      const total = emptyRow('total');
      const integrity: UsageIntegrity = { mismatched: 0, claimed_nano_usd: 0, claimed_usd: '', ids: [] };
      for (const r of await updateAll()) {
        for (const [day, id, nano] of r.mismatched) {
          if (day < first || day > last) continue;
          integrity.mismatched++;
          integrity.claimed_nano_usd += nano;
          if (integrity.ids.length < MISMATCH_IDS) integrity.ids.push(id);
        }
        for (const c of r.cells) {
          if (c[0] < first || c[0] > last) continue;
          const name = (c[at] as string) || '(none)';
          let row = groups.get(name);
          if (!row) groups.set(name, (row = emptyRow(name)));
          for (const sum of [row, total]) {
            sum.requests += c[8];
            sum.input_tokens += c[9];
            sum.output_tokens += c[10];
            sum.saved_input_tokens += c[11];
            sum.saved_output_tokens += c[12];
            sum.nano_usd += c[13];
          }
        }
      }
      const rows = [...groups.values()].sort((a, b) => b.nano_usd - a.nano_usd);
      for (const r of [...rows, total]) r.usd = (r.nano_usd / 1e9).toFixed(6);
      integrity.claimed_usd = (integrity.claimed_nano_usd / 1e9).toFixed(6);
      return { rows, total, integrity };
    },
    async warm() {
      await updateAll();
    },
  };
}
