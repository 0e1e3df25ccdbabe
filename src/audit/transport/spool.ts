// The spool: where records wait on local disk while the sink is slow or down,
// in order, until they can be sent. Segments are small files replayed oldest
// first and deleted once their records reached the sink; a segment whose
// records reached it only in part is rewritten with the rest. A crash between
// sending a segment and deleting it sends that segment again (at least once:
// records carry unique ids).
//
//   <seq>.spool   lines of "<chain>\t<record JSON>"
import { mkdir, open, readdir, readFile, rename, rm, rmdir, stat, statfs, writeFile, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { writeAll } from '../files.js';
import { facetsOf, type PendingRecord } from './pending.js';

const SEGMENT_MAX_BYTES = 4 * 1024 * 1024;
const SEGMENT_MAX_RECORDS = 2000;
/** Below this much free disk the spool counts as full before a write fails halfway. */
const MIN_FREE_BYTES = 1024 * 1024;
const NEWLINE = Buffer.from('\n');

export class SpoolFullError extends Error {
  override name = 'SpoolFullError';
  readonly code = 'SPOOL_FULL';
}

export interface Spool {
  readonly dir: string;
  bytes(): number;
  records(): number;
  isEmpty(): boolean;
  /** Appends in order; throws SpoolFullError, or the file system's error (ENOSPC...). */
  append(items: PendingRecord[]): Promise<void>;
  /** The oldest segment, sealed so appends go to a new one. */
  oldest(): Promise<{ id: string; items: PendingRecord[] } | undefined>;
  /** Keeps only `remaining` of a segment (after a partial replay). */
  replace(id: string, remaining: PendingRecord[]): Promise<void>;
  remove(id: string): Promise<void>;
  /** Room for more: under the size cap and the disk not nearly full. */
  hasRoom(): Promise<boolean>;
  close(): Promise<void>;
}

interface Segment {
  id: string;
  bytes: number;
  records: number;
}

export async function openSpool(options: { dir: string; maxBytes: number }): Promise<Spool> {
  const { dir, maxBytes } = options;
  const segments: Segment[] = [];
  let head: { segment: Segment; handle: FileHandle } | undefined;
  let nextSeq = 1;
  let totalBytes = 0;
  let totalRecords = 0;

  // Segments left by an earlier run are replayed first.
  const names = (await readdir(dir).catch(() => [] as string[])).filter((n) => /^\d+\.spool$/.test(n)).sort();
  for (const name of names) {
    const file = path.join(dir, name);
    const text = await readFile(file, 'utf8');
    const records = text.split('\n').filter((l) => l.includes('\t')).length;
    const segment = { id: name.slice(0, -'.spool'.length), bytes: Buffer.byteLength(text), records };
    segments.push(segment);
    totalBytes += segment.bytes;
    totalRecords += records;
    nextSeq = Math.max(nextSeq, Number(segment.id) + 1);
  }

  const fileOf = (id: string) => path.join(dir, `${id}.spool`);
  const encode = (items: PendingRecord[]) => Buffer.concat(items.flatMap((i) => [Buffer.from(`${i.chain}\t`), i.bytes, NEWLINE]));
  const decode = (text: string): PendingRecord[] => {
    const out: PendingRecord[] = [];
    for (const line of text.split('\n')) {
      const tab = line.indexOf('\t');
      if (tab <= 0) continue;
      const json = line.slice(tab + 1);
      let facets;
      try {
        facets = facetsOf(JSON.parse(json));
      } catch {
        continue; // a line torn by a crash or a full disk: it was never acknowledged
      }
      out.push({ chain: line.slice(0, tab), bytes: Buffer.from(json), facets });
    }
    return out;
  };

  async function seal(): Promise<void> {
    const h = head;
    head = undefined;
    await h?.handle.close().catch(() => {});
  }

  async function forget(id: string): Promise<void> {
    const at = segments.findIndex((s) => s.id === id);
    if (at < 0) return;
    const [s] = segments.splice(at, 1);
    totalBytes -= s!.bytes;
    totalRecords -= s!.records;
  }

  async function freeBytes(): Promise<number> {
    try {
      const s = await statfs(dir);
      return s.bavail * s.bsize;
    } catch {
      return Number.POSITIVE_INFINITY; // nothing to measure yet (the folder is made on first use)
    }
  }

  return {
    dir,
    bytes: () => totalBytes,
    records: () => totalRecords,
    isEmpty: () => totalRecords === 0 && segments.length === 0,
    async append(items) {
      if (items.length === 0) return;
      const data = encode(items);
      const size = data.length;
      if (totalBytes + size > maxBytes) throw new SpoolFullError(`the audit spool is full (${maxBytes} bytes, audit.spool.max_bytes)`);
      if (!head || head.segment.bytes + size > SEGMENT_MAX_BYTES || head.segment.records >= SEGMENT_MAX_RECORDS) {
        await seal();
        await mkdir(dir, { recursive: true });
        const id = String(nextSeq++).padStart(12, '0');
        const handle = await open(fileOf(id), 'ax', 0o640);
        const segment = { id, bytes: 0, records: 0 };
        segments.push(segment);
        head = { segment, handle };
      }
      const { segment, handle } = head;
      try {
        await writeAll(handle, data);
        await handle.datasync();
      } catch (err) {
        // Leave no torn line behind: cut the segment back to what it held,
        // and no empty segment either.
        await handle.truncate(segment.bytes).catch(() => {});
        await seal();
        if (segment.records === 0) {
          await rm(fileOf(segment.id), { force: true }).catch(() => {});
          await forget(segment.id);
        }
        throw err;
      }
      segment.bytes += size;
      segment.records += items.length;
      totalBytes += size;
      totalRecords += items.length;
    },
    async oldest() {
      const s = segments[0];
      if (!s) return undefined;
      if (head?.segment === s) await seal();
      let text: string;
      try {
        text = await readFile(fileOf(s.id), 'utf8');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
        await forget(s.id); // removed by hand: nothing left to send
        return { id: s.id, items: [] };
      }
      return { id: s.id, items: decode(text) };
    },
    async replace(id, remaining) {
      const s = segments.find((x) => x.id === id);
      if (!s) return;
      const data = encode(remaining);
      const tmp = `${fileOf(id)}.tmp`;
      await writeFile(tmp, data, { mode: 0o640 });
      await rename(tmp, fileOf(id));
      totalBytes += data.length - s.bytes;
      totalRecords += remaining.length - s.records;
      s.bytes = data.length;
      s.records = remaining.length;
    },
    async remove(id) {
      await rm(fileOf(id), { force: true });
      await forget(id);
    },
    async hasRoom() {
      if (totalBytes >= maxBytes) return false;
      return (await freeBytes()) > MIN_FREE_BYTES;
    },
    async close() {
      await seal();
      // An empty spool leaves no empty folder behind.
      if (segments.length === 0) await rmdir(dir).catch(() => {});
    },
  };
}

/** Size of a folder's spool segments, for `lanegate audit verify` to mention records still waiting. */
export async function spoolBacklog(dir: string): Promise<{ segments: number; bytes: number }> {
  const names = (await readdir(dir).catch(() => [] as string[])).filter((n) => n.endsWith('.spool'));
  let bytes = 0;
  for (const n of names) bytes += (await stat(path.join(dir, n)).catch(() => ({ size: 0 }))).size;
  return { segments: names.length, bytes };
}
