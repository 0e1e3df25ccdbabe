// The reader over a folder of JSONL files (reader.ts). Two views of a folder:
//
//   chains  the file sink's own chain files in it, as it writes them now;
//           a file of day D holds no record timed after D, so a range skips
//           older days' files unread
//   all     every *.jsonl file in it and its subfolders, chain files or not
//           (version-1 files, an export with a folder per replica); their
//           names need not say when their records were written, so every
//           file is read
import { createReadStream } from 'node:fs';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { parseFileName, utcDay } from '../files.js';
import { createReader, type AuditReader, type StoredLine, type TimeRange } from './reader.js';

export interface FileReaderOptions {
  files: 'chains' | 'all';
}

export function createFileReader(dir: string, o: FileReaderOptions): AuditReader {
  return createReader(dir, (range) => folderLines(dir, o, range));
}

async function* folderLines(dir: string, o: FileReaderOptions, range: TimeRange): AsyncGenerator<StoredLine> {
  const files = o.files === 'all' ? await jsonlFiles(dir) : await chainFiles(dir, range.from);
  for (const file of files) yield* storedLines(file, 0, Infinity);
}

/** A file's lines in [start, end) (byte offsets; `start` at a line's start), each with the one after it. */
async function* storedLines(file: string, start: number, end: number): AsyncGenerator<StoredLine> {
  // Every line of a chain file is sealed; version-1 files never were.
  const sealed = parseFileName('', path.basename(file)) ? 'required' : 'optional';
  let held: string | undefined;
  for await (const line of fileLines(file, start, end)) {
    if (held !== undefined) yield { line: held, sealed, next: line };
    held = line;
  }
  if (held !== undefined) yield { line: held, sealed };
}

/**
 * A reader over the complete lines of one file in [start, end) bytes: a
 * usage rollup (budget/usage-rollup.ts) reads a file once, then only what
 * was appended to it.
 */
export function createFilePartReader(file: string, start: number, end: number): AuditReader {
  return createReader(file, () => storedLines(file, start, end));
}

/** Every *.jsonl file in the folder and its subfolders, sorted: what a ledger over the folder reads. */
export { jsonlFiles };

/** Whether the folder (or one below it) holds any records: whether it is an audit folder at all. */
export async function holdsRecords(dir: string): Promise<boolean> {
  try {
    const entries = await readdir(dir, { recursive: true });
    return entries.some((name) => name.endsWith('.jsonl'));
  } catch {
    return false;
  }
}

async function chainFiles(dir: string, from: number | undefined): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const fromDay = from === undefined ? '' : utcDay(from);
  const out: string[] = [];
  for (const name of names.sort()) {
    const f = parseFileName(dir, name);
    if (f && f.day >= fromDay) out.push(f.path);
  }
  return out;
}

async function jsonlFiles(dir: string): Promise<string[]> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true, recursive: true });
  } catch {
    return [];
  }
  return entries
    .filter((e) => e.isFile() && e.name.endsWith('.jsonl'))
    .map((e) => path.join(e.parentPath ?? (e as unknown as { path: string }).path ?? dir, e.name))
    .sort();
}

/**
 * A file's lines, read a chunk at a time with the stream's backpressure, so
 * memory stays at one chunk however large the file (readline's iterator
 * queues every line a chunk holds as an event, with its own regex per line).
 */
async function* fileLines(file: string, start = 0, end = Infinity): AsyncGenerator<string> {
  if (start >= end) return;
  let rest = '';
  const range = end === Infinity ? { start } : { start, end: end - 1 };
  for await (const chunk of createReadStream(file, { encoding: 'utf8', highWaterMark: 64 * 1024, ...range })) {
    const text = rest + (chunk as string);
    let at = 0;
    for (let nl = text.indexOf('\n'); nl >= 0; nl = text.indexOf('\n', at)) {
      yield text.slice(at, nl);
      at = nl + 1;
    }
    rest = text.slice(at);
  }
  if (rest) yield rest;
}
