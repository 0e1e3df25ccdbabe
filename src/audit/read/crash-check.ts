// After a run that did not stop cleanly (SIGKILL, OOM, a host crash): which
// answered requests have no record? The run's intent log (transport/intents.ts) holds
// the id of every request whose answer started; each one is looked for in
// the trail (the chain files, or the Redis streams) and in the spool. Those
// found nowhere were lost with the process's memory. The next start writes a
// `loss` record naming them into the _gateway chain, counts them
// (lanegate_audit_crash_lost_records) and logs them; `lanegate audit verify`
// reports them too, before the gateway ever starts again.
import { readdir, readFile, rm, stat } from 'node:fs/promises';
import { hostname } from 'node:os';
import path from 'node:path';
import { listChains } from '../files.js';
import { INTENT_FILE, type IntentHeader } from '../transport/intents.js';

export interface Intents {
  /** The intent segments read. */
  files: string[];
  /** Request id -> lane ('' without one), of every answer the dead runs started. */
  ids: Map<string, string>;
  /** When the earliest of those segments was opened (ms): none of their records is older. */
  since: number;
  /** Segments of a gateway still running on this host: not read (its records may still be on their way). */
  live: number;
}

/** The intent segments in `dir`; with `skipLive`, those of a process still alive on this host are left out. */
export async function readIntents(dir: string, o: { skipLive: boolean }): Promise<Intents> {
  const out: Intents = { files: [], ids: new Map(), since: Infinity, live: 0 };
  const names = (await readdir(dir).catch(() => [] as string[])).filter((n) => INTENT_FILE.test(n)).sort();
  const host = hostname();
  for (const name of names) {
    const file = path.join(dir, name);
    const text = await readFile(file, 'utf8').catch(() => undefined);
    if (text === undefined) continue;
    const nl = text.indexOf('\n');
    let header: Partial<IntentHeader> = {};
    try {
      header = JSON.parse(nl < 0 ? text : text.slice(0, nl)) as IntentHeader;
    } catch {
      // A header torn by a crash: the segment held no ids yet.
    }
    if (o.skipLive && header.host === host && typeof header.pid === 'number' && alive(header.pid)) {
      out.live++;
      continue;
    }
    out.files.push(file);
    out.since = Math.min(out.since, typeof header.started === 'number' ? header.started : Number(INTENT_FILE.exec(name)![1]));
    if (nl < 0) continue;
    for (const line of text.slice(nl + 1).split('\n')) {
      const tab = line.indexOf('\t');
      // A line torn by the crash names no request that was answered: its write never finished.
      if (tab <= 0) continue;
      out.ids.set(line.slice(0, tab), line.slice(tab + 1));
    }
  }
  return out;
}

function alive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

const ID = /"id":"([^"]{1,200})"/;

/** The record id of a line of the trail or the spool (a record's own id is its first "id" member). */
export function recordIdOf(line: string): string | undefined {
  return ID.exec(line)?.[1];
}

/**
 * Removes from `missing` every id with a record in the file sink's folder
 * (files written since `since`) or in the spool.
 */
export async function findInFiles(missing: Set<string>, o: { dir: string; spoolDir: string | undefined; since: number }): Promise<void> {
  const files: string[] = [];
  for (const list of (await listChains(o.dir)).values()) for (const f of list) files.push(f.path);
  await findIn(missing, files, o.since);
  if (o.spoolDir) await findInSpool(missing, o.spoolDir, o.since);
}

/** Removes from `missing` every id with a record waiting in the spool. */
export async function findInSpool(missing: Set<string>, spoolDir: string, since: number): Promise<void> {
  const names = await readdir(spoolDir).catch(() => [] as string[]);
  await findIn(
    missing,
    names.filter((n) => /^\d+\.spool$/.test(n)).map((n) => path.join(spoolDir, n)),
    since,
  );
}

async function findIn(missing: Set<string>, files: string[], since: number): Promise<void> {
  for (const file of files) {
    if (missing.size === 0) return;
    const st = await stat(file).catch(() => undefined);
    // A file last written before the run began holds none of its records (1 s for coarse mtimes).
    if (!st || st.mtimeMs < since - 1000) continue;
    const text = await readFile(file, 'utf8').catch(() => '');
    removeFound(missing, text);
  }
}

/** Removes from `missing` the ids of the records (one a line) in `text`. */
export function removeFound(missing: Set<string>, text: string): void {
  let start = 0;
  while (start < text.length && missing.size > 0) {
    let end = text.indexOf('\n', start);
    if (end < 0) end = text.length;
    // The id is near the start of a line: look only there, whatever the bodies hold.
    const id = recordIdOf(text.slice(start, Math.min(end, start + 400)));
    if (id) missing.delete(id);
    start = end + 1;
  }
}

export async function removeIntents(files: string[]): Promise<void> {
  await Promise.all(files.map((f) => rm(f, { force: true })));
}
