// Reading the trail back: one record by request id, or a filtered list in
// time order. The file sink reads each candidate file's index and then only
// the lines it returns; the stream sink reads each lane's stream with XRANGE.
// What comes back is cut to the lane's *current* body handling (restrictBodies),
// so tightening a lane also tightens what reviewers see of older records.
import { open, stat } from 'node:fs/promises';
import { createSummariser, loadIndex, loadSummary, readLineAt, RowLog, type IndexRow, type IndexSummary } from './file-index.js';
import { compareFiles, dayEndMs, listChains, type AuditFile } from '../files.js';
import type { FileBackend } from '../transport/file-sink.js';
import { readRecord } from './integrity.js';
import { mapBounded } from '../../map-bounded.js';
import type { BodyMode } from '../schema.js';

export interface AuditFilter {
  /** Record time bounds, ms (inclusive). */
  from?: number;
  to?: number;
  team?: string;
  app?: string;
  /**
   * The chain: a lane, or the gateway's own (`_gateway`: requests refused
   * before a lane was chosen, loss records; `_purges`; `_prompts`).
   */
  lane?: string;
  model?: string;
  /** An exact status (`429`) or a class (`5xx`). */
  status?: string;
  kind?: string;
  limit: number;
  /** Oldest first (the default) or newest first (the console). */
  order?: AuditOrder;
  /** Resume after this record (the `next` of a previous page), in the page's order. */
  after?: { time: number; id: string };
}

export const AUDIT_ORDERS = ['oldest', 'newest'] as const;
export type AuditOrder = (typeof AUDIT_ORDERS)[number];

export interface AuditPage {
  data: Array<Record<string, unknown>>;
  /** Pass as `after` for the next page; absent on the last one. */
  next?: string;
}

export interface AuditQuery {
  /** `time`: when the record was written, if known (the console's links carry it): where to look first. */
  get(id: string, o?: { time?: number }): Promise<Record<string, unknown> | undefined>;
  list(filter: AuditFilter): Promise<AuditPage>;
}

type Row = { time: number; id: string; kind: string; team: string | null; app: string | null; lane: string | null; model: string | null; status: number | null };

export function statusMatches(want: string | undefined, status: number | null): boolean {
  if (!want) return true;
  if (status === null) return false;
  const cls = /^([1-5])xx$/i.exec(want);
  if (cls) return Math.floor(status / 100) === Number(cls[1]);
  return String(status) === want;
}

function matches(f: AuditFilter, r: Row): boolean {
  if (f.from !== undefined && r.time < f.from) return false;
  if (f.to !== undefined && r.time > f.to) return false;
  if (f.team !== undefined && r.team !== f.team) return false;
  if (f.app !== undefined && r.app !== f.app) return false;
  if (f.model !== undefined && r.model !== f.model) return false;
  if (f.kind !== undefined && r.kind !== f.kind) return false;
  if (!statusMatches(f.status, r.status)) return false;
  if (f.after && !pastCursor(f, r)) return false;
  return true;
}

/** Whether `r` comes after the filter's cursor in the page's order. */
export function pastCursor(f: Pick<AuditFilter, 'after' | 'order'>, r: { time: number; id: string }): boolean {
  if (!f.after) return true;
  const c = byTime(r, f.after);
  return f.order === 'newest' ? c < 0 : c > 0;
}

export const byTime = (a: { time: number; id: string }, b: { time: number; id: string }) => a.time - b.time || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

export function encodeCursor(r: { time: number; id: string }): string {
  return Buffer.from(`${r.time}:${r.id}`).toString('base64url');
}

export function decodeCursor(s: string): { time: number; id: string } | undefined {
  const text = Buffer.from(s, 'base64url').toString('utf8');
  const at = text.indexOf(':');
  const time = Number(text.slice(0, at));
  return at > 0 && Number.isFinite(time) ? { time, id: text.slice(at + 1) } : undefined;
}

function rowView(r: IndexRow): Row {
  return { id: r[0], time: r[2], kind: r[3], team: r[4], app: r[5], lane: r[6], model: r[7], status: r[8] };
}

/** What a closed file's index says of it (its saved summary), kept in memory: a few numbers and small sets. */
interface FileSummary {
  size: number;
  mtimeMs: number;
  min: number;
  max: number;
  /** Distinct values, or null when there were too many to keep (the file may then hold anything). */
  teams: Set<string | null> | null;
  apps: Set<string | null> | null;
  models: Set<string | null> | null;
  kinds: Set<string> | null;
  statuses: Set<number | null> | null;
}

/** A record is timed when its request arrived, up to this much before its file's day began (the longest a request can take, with room). */
const DAY_MS = 86_400_000;
/** Index rows kept in memory across searches, in all (some 80 bytes each, outside the JS heap but for a few objects a file). */
const ROW_CACHE_ROWS = 150_000;
/** Files stat'ed and index summaries read at once when a search picks its files. */
const OPEN_CONCURRENCY = 16;
/** Bytes read at a record's offset: its line and usually the next one (which must name its hash). */
const READ_BYTES = 32 * 1024;

function inMemory(s: IndexSummary, size: number, mtimeMs: number): FileSummary {
  const set = <T>(list: T[] | null) => (list ? new Set(list) : null);
  return { size, mtimeMs, min: s.min, max: s.max, teams: set(s.teams), apps: set(s.apps), models: set(s.models), kinds: set(s.kinds), statuses: set(s.statuses) };
}

function summarise(rows: readonly IndexRow[], size: number, mtimeMs: number): FileSummary {
  const summary = createSummariser();
  summary.add(rows);
  return inMemory(summary.done(), size, mtimeMs);
}

/** False when no record of the summarised file can match the filter. */
function mayHold(s: FileSummary, f: AuditFilter): boolean {
  if (s.min > s.max) return false; // no records
  if (f.from !== undefined && s.max < f.from) return false;
  if (f.to !== undefined && s.min > f.to) return false;
  if (f.after && (f.order === 'newest' ? s.min > f.after.time : s.max < f.after.time)) return false;
  if (f.team !== undefined && s.teams && !s.teams.has(f.team)) return false;
  if (f.app !== undefined && s.apps && !s.apps.has(f.app)) return false;
  if (f.model !== undefined && s.models && !s.models.has(f.model)) return false;
  if (f.kind !== undefined && s.kinds && !s.kinds.has(f.kind)) return false;
  if (f.status !== undefined && s.statuses && ![...s.statuses].some((st) => statusMatches(f.status, st))) return false;
  return true;
}

interface Candidate {
  f: AuditFile;
  /** Bounds of the file's record times: exact from its summary, or from its day and mtime. */
  lo: number;
  hi: number;
  active: boolean;
  stat?: { size: number; mtimeMs: number };
}

/**
 * Queries over the file sink's folder: the running sink's (which knows the
 * rows of the files it has open), or a folder read from outside (the CLI,
 * beside a running gateway: it builds indexes in memory and saves none).
 *
 * A page reads only the files that can hold it. Files are taken in the
 * page's order by the bounds of their record times (a file of day D holds
 * no record timed after D, nor after its last write, its mtime; none before
 * D by more than a request's length), and the search stops once it holds a
 * page and the next file can only hold records that come after it. Each
 * closed file's index, once read, leaves a small summary in memory (time
 * bounds and the distinct teams, apps, models, kinds and statuses), so a
 * filter skips files that cannot match without reading their index again.
 * The newest page reads the newest file of each chain; a filter that
 * matches rarely reads what it must to fill a page, and once summarised,
 * only files holding a match.
 */
export interface FileQueryOptions {
  /** Told of each file whose rows a query reads (its index, or the open file's rows): what a search costs. */
  onRowsRead?: (file: string) => void;
}

export interface FileQuery extends AuditQuery {
  /** Files whose summary, and whose rows, the query keeps in memory between searches. */
  kept(): { summaries: number; rows: number };
}

export function createFileQuery(backend: Pick<FileBackend, 'dir'> & Partial<Pick<FileBackend, 'activeRows' | 'activeFiles'>>, o: FileQueryOptions = {}): FileQuery {
  const dir = backend.dir;
  const save = backend.activeRows !== undefined;
  const summaries = new Map<string, FileSummary>();

  // The rows of the closed files searched last, kept compactly (RowLog: typed
  // arrays and one buffer of ids, a few objects a file, not one per row), up
  // to ROW_CACHE_ROWS: the newest page reads the same few files again and
  // again, and parsing a full file's index (some 30,000 rows, MBs of JSON)
  // was most of its cost. A file's entry holds only while its size and
  // mtime do.
  const cached = new Map<string, { size: number; mtimeMs: number; rows: RowLog }>();
  let cachedRows = 0;
  function remember(file: string, stat: { size: number; mtimeMs: number }, rows: IndexRow[]): void {
    if (rows.length > ROW_CACHE_ROWS / 2) return;
    const log = new RowLog();
    for (const r of rows) log.push({ id: r[0], time: r[2], kind: r[3], team: r[4], app: r[5], lane: r[6], model: r[7], status: r[8] }, r[1]);
    forget(file);
    cached.set(file, { size: stat.size, mtimeMs: stat.mtimeMs, rows: log });
    cachedRows += log.length;
    // Oldest first out (a Map iterates in insertion order; a hit moves its entry to the end).
    for (const [name, entry] of cached) {
      if (cachedRows <= ROW_CACHE_ROWS) break;
      cached.delete(name);
      cachedRows -= entry.rows.length;
    }
  }
  function forget(file: string): void {
    const old = cached.get(file);
    if (!old) return;
    cached.delete(file);
    cachedRows -= old.rows.length;
  }

  async function rowsOf(f: AuditFile, stat?: { size: number; mtimeMs: number }): Promise<IndexRow[]> {
    o.onRowsRead?.(f.path);
    const active = backend.activeRows?.(f.path);
    if (active) return active;
    const hit = cached.get(f.path);
    if (hit && stat && hit.size === stat.size && hit.mtimeMs === stat.mtimeMs) {
      cached.delete(f.path);
      cached.set(f.path, hit);
      return hit.rows.slice();
    }
    const rows = (await loadIndex(f.path, { save })).rows;
    if (stat) {
      summaries.set(f.path, summarise(rows, stat.size, stat.mtimeMs));
      remember(f.path, stat, rows);
    } else forget(f.path);
    return rows;
  }

  /** A file gone (retention, a purge): what is kept of it goes too. */
  function dropFile(file: string): void {
    summaries.delete(file);
    forget(file);
  }

  async function candidates(chains: Map<string, AuditFile[]>, lane: string | undefined): Promise<Candidate[]> {
    const active = backend.activeFiles?.() ?? new Set<string>();
    const listed = new Set([...chains.values()].flatMap((files) => files.map((f) => f.path)));
    for (const file of summaries.keys()) if (!listed.has(file)) dropFile(file);
    for (const file of cached.keys()) if (!listed.has(file)) dropFile(file);
    const out: Candidate[] = [];
    const all = [...chains].filter(([chain]) => lane === undefined || chain === lane).flatMap(([, files]) => files);
    // Bounded: a stat and an index read per file, and a trail can hold thousands of files (EMFILE).
    await mapBounded(all, OPEN_CONCURRENCY, async (f) => {
      if (active.has(f.path)) {
        out.push({ f, lo: Date.parse(`${f.day}T00:00:00.000Z`) - DAY_MS, hi: Infinity, active: true });
        return;
      }
      let st;
      try {
        st = await stat(f.path);
      } catch {
        dropFile(f.path); // removed meanwhile (retention)
        return;
      }
      let known = summaries.get(f.path);
      if (!known || known.size !== st.size || known.mtimeMs !== st.mtimeMs) {
        summaries.delete(f.path);
        // The summary at the end of its index: a few KB, not the rows.
        const saved = await loadSummary(f.path, st.size);
        if (saved) summaries.set(f.path, (known = inMemory(saved, st.size, st.mtimeMs)));
        else known = undefined;
      }
      if (known) {
        out.push({ f, lo: known.min, hi: known.max, active: false, stat: st });
        return;
      }
      out.push({ f, lo: Date.parse(`${f.day}T00:00:00.000Z`) - DAY_MS, hi: Math.min(dayEndMs(f.day), st.mtimeMs), active: false, stat: st });
    });
    return out;
  }

  /** The record at `row`, checked against its hash and against the line after it (`next`), whose `prev` must name it. */
  async function readRows(f: AuditFile, wanted: Array<{ row: IndexRow; next: IndexRow | undefined }>): Promise<Array<Record<string, unknown> | undefined>> {
    const handle = await open(f.path, 'r');
    try {
      const out: Array<Record<string, unknown> | undefined> = [];
      const buf = Buffer.allocUnsafe(READ_BYTES);
      for (const { row, next } of wanted) {
        const { bytesRead } = await handle.read(buf, 0, READ_BYTES, row[1]);
        const chunk = buf.subarray(0, bytesRead);
        const nl = chunk.indexOf(0x0a);
        let line: string | undefined;
        let nextLine: string | undefined;
        if (nl >= 0) {
          line = chunk.toString('utf8', 0, nl);
          if (next && next[1] === row[1] + nl + 1) {
            const nl2 = chunk.indexOf(0x0a, nl + 1);
            if (nl2 >= 0) nextLine = chunk.toString('utf8', nl + 1, nl2);
          }
        } else line = await readLineAt(f.path, row[1]);
        if (next && nextLine === undefined) nextLine = await readLineAt(f.path, next[1]);
        // Every line of a chain file is sealed: one without its hash was changed too.
        out.push(line ? readRecord(line, { sealed: 'required', next: nextLine }) : undefined);
      }
      return out;
    } finally {
      await handle.close();
    }
  }

  async function readOne(f: AuditFile, rows: IndexRow[], i: number): Promise<Record<string, unknown> | undefined> {
    return (await readRows(f, [{ row: rows[i]!, next: rows[i + 1] }]))[0];
  }

  return {
    kept: () => ({ summaries: summaries.size, rows: cached.size }),
    async get(id, hint = {}) {
      const found = await candidates(await listChains(dir), undefined);
      // With the record's time (the console's links carry it), the files that can hold it come first; then newest first.
      const holds = (c: Candidate) => hint.time !== undefined && c.lo <= hint.time && hint.time <= c.hi;
      found.sort((a, b) => Number(holds(b)) - Number(holds(a)) || b.hi - a.hi || compareFiles(b.f, a.f));
      for (const c of found) {
        let rows: IndexRow[];
        try {
          rows = await rowsOf(c.f, c.stat);
        } catch {
          continue; // removed meanwhile (retention)
        }
        let i = rows.findIndex((r) => r[0] === id && r[3] === 'request');
        if (i < 0) i = rows.findIndex((r) => r[0] === id);
        if (i >= 0) return readOne(c.f, rows, i);
      }
      return undefined;
    },
    async list(filter) {
      const newest = filter.order === 'newest';
      const inOrder = (a: { time: number; id: string }, b: { time: number; id: string }) => (newest ? byTime(b, a) : byTime(a, b));
      let files = await candidates(await listChains(dir), filter.lane);
      // A file holds what was written on its day; a record's time (when the
      // request arrived) can be up to a request's length earlier.
      files = files.filter((c) => (filter.from === undefined || c.hi >= filter.from) && (filter.to === undefined || c.lo <= filter.to));
      files = files.filter((c) => {
        const s = c.active ? undefined : summaries.get(c.f.path);
        return !s || mayHold(s, filter);
      });
      files.sort((a, b) => (newest ? b.hi - a.hi : a.lo - b.lo) || (newest ? compareFiles(b.f, a.f) : compareFiles(a.f, b.f)));
      // One more than a page: whether there is a next page.
      const want = filter.limit + 1;
      let found: Array<{ f: AuditFile; row: IndexRow; next: IndexRow | undefined; view: Row }> = [];
      for (const c of files) {
        if (found.length >= want) {
          const last = found[want - 1]!.view;
          // Every record this file (and each after it) can hold comes after the page.
          if (newest ? c.hi < last.time : c.lo > last.time) break;
        }
        let rows: IndexRow[];
        try {
          rows = await rowsOf(c.f, c.stat);
        } catch {
          continue;
        }
        for (const [i, row] of rows.entries()) {
          const view = rowView(row);
          if (matches(filter, view)) found.push({ f: c.f, row, next: rows[i + 1], view });
        }
        found.sort((a, b) => inOrder(a.view, b.view));
        if (found.length > want) found = found.slice(0, want);
      }
      const page = found.slice(0, filter.limit);
      // Each file opened once for the records the page takes from it.
      const byFile = new Map<string, { f: AuditFile; at: number[] }>();
      page.forEach((p, at) => {
        let g = byFile.get(p.f.path);
        if (!g) byFile.set(p.f.path, (g = { f: p.f, at: [] }));
        g.at.push(at);
      });
      const records: Array<Record<string, unknown> | undefined> = new Array(page.length);
      for (const g of byFile.values()) {
        const read = await readRows(
          g.f,
          g.at.map((at) => page[at]!),
        ).catch(() => [] as Array<Record<string, unknown> | undefined>);
        g.at.forEach((at, k) => (records[at] = read[k]));
      }
      const data = records.filter((r): r is Record<string, unknown> => r !== undefined);
      const last = page.at(-1);
      return { data, ...(found.length > filter.limit && last ? { next: encodeCursor(last.view) } : {}) };
    },
  };
}

const ORDER: Record<BodyMode, number> = { full: 0, redacted: 1, hash: 2 };

/**
 * Cuts a record's bodies to what its lane allows now. A lane made stricter
 * since the record was written (or removed: unknown lanes count as `hash`)
 * hides what the record kept; redacted text is never "unredacted".
 */
export function restrictBodies(record: Record<string, unknown>, currentMode: BodyMode | undefined): Record<string, unknown> {
  const bodies = record.bodies as { mode?: BodyMode; request?: unknown; response?: unknown } | undefined;
  if (!bodies || typeof bodies !== 'object' || !bodies.mode) return record;
  const now: BodyMode = currentMode ?? 'hash';
  if (ORDER[now] <= ORDER[bodies.mode]) return record;
  // Stricter now: keep only the hashes (re-redacting old full text is left to
  // nobody; hashes are what a stricter lane allows either way).
  const tools = record.tools as { called?: Array<Record<string, unknown>> } | undefined;
  return {
    ...record,
    bodies: { ...bodies, mode: 'hash', request: null, response: null, restricted_from: bodies.mode },
    ...(tools?.called ? { tools: { ...tools, called: tools.called.map((c) => ({ ...c, arguments: null })) } } : {}),
  };
}
