// Reading the trail back: one record by request id, or a filtered list in
// time order. The file sink reads each candidate file's index and then only
// the lines it returns; the stream sink reads each lane's stream with XRANGE.
// What comes back is cut to the lane's *current* body handling (restrictBodies),
// so tightening a lane also tightens what reviewers see of older records.
import { loadIndex, readLineAt, type IndexRow } from './file-index.js';
import { listChains, utcDay, type AuditFile } from '../files.js';
import type { FileBackend } from '../transport/file-sink.js';
import { readRecord } from './integrity.js';
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
  /** Resume after this record (the `next` of a previous page). */
  after?: { time: number; id: string };
}

export interface AuditPage {
  data: Array<Record<string, unknown>>;
  /** Pass as `after` for the next page; absent on the last one. */
  next?: string;
}

export interface AuditQuery {
  get(id: string): Promise<Record<string, unknown> | undefined>;
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
  if (f.after && (r.time < f.after.time || (r.time === f.after.time && r.id <= f.after.id))) return false;
  return true;
}

const byTime = (a: { time: number; id: string }, b: { time: number; id: string }) => a.time - b.time || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

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

/**
 * Queries over the file sink's folder: the running sink's (which knows the
 * rows of the files it has open), or a folder read from outside (the CLI,
 * beside a running gateway: it builds indexes in memory and saves none).
 */
export function createFileQuery(backend: Pick<FileBackend, 'dir'> & Partial<Pick<FileBackend, 'activeRows'>>): AuditQuery {
  const dir = backend.dir;
  const save = backend.activeRows !== undefined;
  // Read from disk each time, never cached: a full file's index is some
  // 30,000 rows, several MB of heap, that every major GC would walk.
  async function rowsOf(f: AuditFile): Promise<IndexRow[]> {
    return backend.activeRows?.(f.path) ?? (await loadIndex(f.path, { save })).rows;
  }

  /** `next`: the row written after it in the same file, whose `prev` must name it. */
  async function read(f: AuditFile, row: IndexRow, next: IndexRow | undefined): Promise<Record<string, unknown> | undefined> {
    const line = await readLineAt(f.path, row[1]);
    if (!line) return undefined;
    const nextLine = next ? await readLineAt(f.path, next[1]) : undefined;
    // Every line of a chain file is sealed: one without its hash was changed too.
    return readRecord(line, { sealed: 'required', next: nextLine });
  }
  const after = (rows: IndexRow[], row: IndexRow): IndexRow | undefined => {
    const i = rows.indexOf(row);
    return rows[i + 1];
  };

  return {
    async get(id) {
      const chains = await listChains(dir);
      const all = [...chains.values()].flat().sort((a, b) => (a.day < b.day ? 1 : a.day > b.day ? -1 : b.seq - a.seq));
      for (const f of all) {
        let rows: IndexRow[];
        try {
          rows = await rowsOf(f);
        } catch {
          continue; // removed meanwhile (retention)
        }
        const row = rows.find((r) => r[0] === id && r[3] === 'request') ?? rows.find((r) => r[0] === id);
        if (row) return read(f, row, after(rows, row));
      }
      return undefined;
    },
    async list(filter) {
      const chains = await listChains(dir);
      // A file holds what was written on its day; a record's time (when the
      // request arrived) can be up to a request's length earlier.
      const firstDay = filter.from !== undefined ? utcDay(filter.from) : '';
      const lastDay = filter.to !== undefined ? utcDay(filter.to + 86_400_000) : '9999';
      const found: Array<{ f: AuditFile; row: IndexRow; next: IndexRow | undefined; view: Row }> = [];
      for (const [chain, files] of chains) {
        // The lane filter names a chain, so `_gateway` finds the records no lane holds.
        if (filter.lane !== undefined && chain !== filter.lane) continue;
        for (const f of files) {
          if (f.day < firstDay || f.day > lastDay) continue;
          let rows: IndexRow[];
          try {
            rows = await rowsOf(f);
          } catch {
            continue;
          }
          for (const [i, row] of rows.entries()) {
            const view = rowView(row);
            if (matches(filter, view)) found.push({ f, row, next: rows[i + 1], view });
          }
        }
      }
      found.sort((a, b) => byTime(a.view, b.view));
      const page = found.slice(0, filter.limit);
      const data: Array<Record<string, unknown>> = [];
      for (const p of page) {
        const record = await read(p.f, p.row, p.next).catch(() => undefined);
        if (record) data.push(record);
      }
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
