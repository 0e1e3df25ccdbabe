// Names and listing of the file sink's files. Each chain (a lane, or the
// gateway's own _gateway and _purges) has its own files, rotated by UTC day
// and by size:
//
//   audit-<chain>-<YYYY-MM-DD>.<seq>.jsonl    records, one JSON line each
//   audit-<chain>-<YYYY-MM-DD>.<seq>.idx      that file's index (query)
//
// One chain per lane is what lets each lane's retention drop whole files:
// nothing is ever rewritten.
import { open, readdir, type FileHandle } from 'node:fs/promises';
import path from 'node:path';

const NAME = /^audit-(.+)-(\d{4}-\d{2}-\d{2})\.(\d+)\.jsonl$/;

export interface AuditFile {
  name: string;
  path: string;
  chain: string;
  /** UTC day the file's records were written. */
  day: string;
  seq: number;
}

export function fileName(chain: string, day: string, seq: number): string {
  return `audit-${chain}-${day}.${String(seq).padStart(3, '0')}.jsonl`;
}

/**
 * Writes all of `data`: a nearly full disk can take part of a write without
 * an error, and the rest must then fail loudly (ENOSPC), never vanish.
 */
export async function writeAll(handle: FileHandle, data: Buffer): Promise<void> {
  let written = 0;
  while (written < data.length) {
    const { bytesWritten } = await handle.write(data, written, data.length - written);
    if (bytesWritten <= 0) throw Object.assign(new Error('the file accepted no bytes'), { code: 'EIO' });
    written += bytesWritten;
  }
}

export function indexPathOf(file: string): string {
  return file.replace(/\.jsonl$/, '.idx');
}

export function parseFileName(dir: string, name: string): AuditFile | undefined {
  const m = NAME.exec(name);
  if (!m) return undefined;
  return { name, path: path.join(dir, name), chain: m[1]!, day: m[2]!, seq: Number(m[3]) };
}

export function utcDay(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

/** Start of the UTC day after `day`, in ms. */
export function dayEndMs(day: string): number {
  return Date.parse(`${day}T00:00:00.000Z`) + 86_400_000;
}

export function compareFiles(a: AuditFile, b: AuditFile): number {
  return a.day < b.day ? -1 : a.day > b.day ? 1 : a.seq - b.seq;
}

/** The chained files in `dir`, grouped by chain, each list oldest first. */
export async function listChains(dir: string): Promise<Map<string, AuditFile[]>> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return new Map();
    throw err;
  }
  const chains = new Map<string, AuditFile[]>();
  for (const name of names) {
    const f = parseFileName(dir, name);
    if (!f) continue;
    let list = chains.get(f.chain);
    if (!list) chains.set(f.chain, (list = []));
    list.push(f);
  }
  for (const list of chains.values()) list.sort(compareFiles);
  return chains;
}

/**
 * The last complete line of a file (lines can be megabytes long: read
 * backwards until a newline), and whether the file ends in a torn line.
 */
export async function lastLine(file: string): Promise<{ line: string | undefined; torn: boolean; size: number }> {
  const handle = await open(file, 'r');
  try {
    const { size } = await handle.stat();
    if (size === 0) return { line: undefined, torn: false, size };
    const chunk = 64 * 1024;
    let tail = Buffer.alloc(0);
    // Find the end of the last complete line.
    const last = Buffer.alloc(1);
    await handle.read(last, 0, 1, size - 1);
    const torn = last[0] !== 0x0a;
    for (let pos = size; pos > 0; ) {
      const start = Math.max(0, pos - chunk);
      const buf = Buffer.alloc(pos - start);
      await handle.read(buf, 0, buf.length, start);
      tail = Buffer.concat([buf, tail]);
      pos = start;
      // The newline that ends the last complete line, then the one before it.
      const endAt = torn ? tail.lastIndexOf(0x0a) : tail.length - 1;
      if (endAt < 0) continue;
      // (lastIndexOf with a negative offset would count from the end.)
      const startAt = endAt > 0 ? tail.lastIndexOf(0x0a, endAt - 1) : -1;
      if (startAt >= 0 || pos === 0) {
        const line = tail.subarray(startAt + 1, endAt).toString('utf8');
        return { line: line || undefined, torn, size };
      }
    }
    return { line: undefined, torn, size };
  } finally {
    await handle.close();
  }
}
