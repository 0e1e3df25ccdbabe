// The file sink (the default): append-only JSONL, one chain of files per lane
// (see files.ts for names), each line chained to the one before by hash (see
// chain.ts). Files are rotated at UTC midnight and at audit.rotate_bytes, and
// never reopened for writing once closed: a restart starts a new file that
// continues the chain from the last line on disk.
//
// Before each batch the open file is checked against its path: a file deleted,
// truncated or replaced under the running gateway is reported and writing goes
// on in a new file (the chain then shows the gap to `audit verify`). A write
// that fails halfway (a full disk) is cut back so no torn line stays behind,
// and the writer spools the batch.
import { mkdir, open, stat, statfs, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from '../../telemetry/logger.js';
import { GENESIS, lineHash, SEAL_BYTES, sealInto } from '../chain.js';
import { RowLog, saveIndex, type IndexRow } from '../read/file-index.js';
import { fileName, lastLine, listChains, utcDay, writeAll, type AuditFile } from '../files.js';
import type { AuditMetrics } from '../metrics.js';
import type { PendingRecord } from './pending.js';
import { createAuditWriter, type AuditBackend, type AuditSink, type WriteOutcome } from './writer.js';
import { openSpool } from './spool.js';
import { latestAnchor } from '../read/retention.js';
import { createFileQuery } from '../read/query.js';

const MIN_FREE_BYTES = 1024 * 1024;
const PATH_CHECK_MS = 1000;

interface OpenFile {
  file: AuditFile;
  handle: FileHandle;
  size: number;
  ino: number;
  rows: RowLog;
  warnedForeign: boolean;
  /** When the path was last checked to still be this file. */
  checkedAt: number;
}

interface ChainState {
  chain: string;
  /** Hash of the chain's last record; undefined until resumed from disk. */
  prev: string | undefined;
  open: OpenFile | undefined;
}

export interface FileBackend extends AuditBackend {
  readonly dir: string;
  /** Index rows of a file this sink has open (its saved index does not exist yet). */
  activeRows(file: string): IndexRow[] | undefined;
  /** Paths of the files this sink has open: retention leaves them alone. */
  activeFiles(): ReadonlySet<string>;
}

export interface FileBackendOptions {
  dir: string;
  rotateBytes: number;
  logger: Logger;
}

export function createFileBackend(options: FileBackendOptions): FileBackend {
  const { dir, rotateBytes, logger } = options;
  let listing: Promise<Map<string, AuditFile[]>> | undefined;
  const chains = new Map<string, ChainState>();

  const files = () =>
    (listing ??= (async () => {
      await mkdir(dir, { recursive: true });
      return listChains(dir);
    })().catch((err: unknown) => {
      listing = undefined;
      throw err;
    }));

  async function chainState(chain: string): Promise<ChainState> {
    let state = chains.get(chain);
    if (state) {
      if (state.prev === undefined) state.prev = await resume(chain);
      return state;
    }
    state = { chain, prev: undefined, open: undefined };
    chains.set(chain, state);
    state.prev = await resume(chain);
    return state;
  }

  /** The hash to continue the chain from: its newest file's last line. */
  async function resume(chain: string): Promise<string> {
    const list = (await files()).get(chain) ?? [];
    for (let i = list.length - 1; i >= 0; i--) {
      const f = list[i]!;
      let tail;
      try {
        tail = await lastLine(f.path);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
        throw err;
      }
      if (tail.torn) logger.warn({ file: f.name }, 'the last line of an audit file is incomplete (a crash or a full disk); audit verify will report it');
      if (!tail.line) continue;
      const hash = lineHash(tail.line);
      if (hash) return hash;
      logger.error({ file: f.name }, 'the last line of an audit file carries no hash; the chain starts again from genesis (audit verify will report it)');
      return GENESIS;
    }
    // Every file purged: continue from the purge record's anchor, so the chain stays one.
    return (await latestAnchor(dir, chain)) ?? GENESIS;
  }

  async function openNext(state: ChainState, day: string): Promise<OpenFile> {
    const known = (await files()).get(state.chain) ?? [];
    let seq = 0;
    for (const f of known) if (f.day === day) seq = Math.max(seq, f.seq + 1);
    for (;;) {
      const name = fileName(state.chain, day, seq);
      const full = path.join(dir, name);
      let handle: FileHandle;
      try {
        // Exclusive: never append to a file someone else started.
        handle = await open(full, 'ax', 0o640);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
          seq++;
          continue;
        }
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
          // The folder itself was removed: make it again.
          await mkdir(dir, { recursive: true });
          handle = await open(full, 'ax', 0o640);
        } else throw err;
      }
      const file: AuditFile = { name, path: full, chain: state.chain, day, seq };
      known.push(file);
      if (!(await files()).has(state.chain)) (await files()).set(state.chain, known);
      const st = await handle.stat();
      return (state.open = { file, handle, size: 0, ino: st.ino, rows: new RowLog(), warnedForeign: false, checkedAt: Date.now() });
    }
  }

  async function closeFile(state: ChainState, saveIdx: boolean): Promise<void> {
    const o = state.open;
    state.open = undefined;
    if (!o) return;
    await o.handle.close().catch(() => {});
    if (saveIdx && o.size > 0) {
      await saveIndex(o.file.path, { size: o.size, rows: o.rows }).catch((err: unknown) =>
        logger.warn({ file: o.file.name, err: String(err) }, 'could not save an audit file index; the first query rebuilds it'),
      );
    }
  }

  /**
   * Was the file moved away from its path? Checked at most once a second:
   * records written meanwhile are in the moved file, not lost. (A deleted,
   * replaced or truncated file is caught after every write: see writeChain.)
   */
  async function movedAway(o: OpenFile): Promise<boolean> {
    const now = Date.now();
    if (now - o.checkedAt < PATH_CHECK_MS) return false;
    o.checkedAt = now;
    try {
      return (await stat(o.file.path)).ino !== o.ino;
    } catch {
      return true;
    }
  }

  async function fileFor(state: ChainState, day: string, bytes: number): Promise<OpenFile> {
    const o = state.open;
    if (o) {
      if (await movedAway(o)) {
        logger.error({ file: o.file.name }, 'audit file moved away from the audit folder while the gateway was writing it: continuing in a new file');
        await closeFile(state, false);
      } else if (o.file.day !== day || (o.size > 0 && o.size + bytes > rotateBytes)) {
        await closeFile(state, true);
      }
    }
    return state.open ?? openNext(state, day);
  }

  /** Appends the whole buffer, or cuts the file back to where it began and throws. */
  async function append(state: ChainState, o: OpenFile, buffer: Buffer): Promise<void> {
    try {
      await writeAll(o.handle, buffer);
    } catch (err) {
      // Leave no torn line: cut the file back to where this batch began.
      await o.handle.truncate(o.size).catch(async () => closeFile(state, false));
      throw err;
    }
  }

  /**
   * After the write, one fstat: a file deleted or replaced under us (its
   * last link gone: what we wrote went nowhere) or truncated (what it held is
   * gone) makes us start a new file and write the batch again there.
   */
  async function damage(o: OpenFile, written: number): Promise<'deleted' | 'truncated' | undefined> {
    const st = await o.handle.stat();
    if (st.nlink === 0) return 'deleted';
    const expected = o.size + written;
    if (st.size < expected) return 'truncated';
    if (st.size > expected) {
      if (!o.warnedForeign) {
        o.warnedForeign = true;
        logger.error({ file: o.file.name }, 'another process is appending to this audit file: give each gateway its own audit.dir (the chain breaks here)');
      }
      o.size = st.size - written;
    }
    return undefined;
  }

  async function writeChain(chain: string, items: PendingRecord[], day: string): Promise<void> {
    const state = await chainState(chain);
    let prev = state.prev!;
    const sizes: number[] = [];
    let total = 0;
    for (const item of items) {
      const size = item.bytes.length + SEAL_BYTES + 1;
      sizes.push(size);
      total += size;
    }
    // One buffer for the batch, each line sealed in place: no string copy of any line.
    const buffer = Buffer.allocUnsafe(total);
    let at = 0;
    for (let i = 0; i < items.length; i++) {
      prev = sealInto(buffer, at, items[i]!.bytes, prev);
      at += sizes[i]!;
      buffer[at - 1] = 0x0a;
    }
    let o = await fileFor(state, day, buffer.length);
    await append(state, o, buffer);
    const problem = await damage(o, buffer.length);
    if (problem) {
      logger.error(
        { file: o.file.name, problem },
        `audit file ${problem} while the gateway was writing it: continuing in a new file (audit verify will report the records that went with it)`,
      );
      await closeFile(state, false);
      o = await openNext(state, day);
      await append(state, o, buffer);
    }
    let offset = o.size;
    for (let i = 0; i < items.length; i++) {
      o.rows.push(items[i]!.facets, offset);
      offset += sizes[i]!;
    }
    o.size += buffer.length;
    state.prev = prev;
  }

  return {
    kind: 'file',
    dir,
    async write(batch): Promise<WriteOutcome> {
      const day = utcDay(Date.now());
      // Each chain's records go together, in order.
      const groups = new Map<string, PendingRecord[]>();
      for (const item of batch) {
        let list = groups.get(item.chain);
        if (!list) groups.set(item.chain, (list = []));
        list.push(item);
      }
      const failed: PendingRecord[] = [];
      let error: unknown;
      for (const [chain, items] of groups) {
        try {
          await writeChain(chain, items, day);
        } catch (err) {
          error ??= err;
          failed.push(...items);
        }
      }
      // Keep the batch's order among the failed ones.
      if (failed.length > 0 && groups.size > 1) {
        const set = new Set(failed);
        return { failed: batch.filter((i) => set.has(i)), error };
      }
      return { failed, error };
    },
    async ready() {
      try {
        await mkdir(dir, { recursive: true });
        const s = await statfs(dir);
        return s.bavail * s.bsize > MIN_FREE_BYTES;
      } catch {
        return false;
      }
    },
    async sync() {
      await Promise.all([...chains.values()].flatMap((s) => (s.open ? [s.open.handle.datasync().catch(() => {})] : [])));
    },
    async close() {
      for (const state of chains.values()) {
        await state.open?.handle.datasync().catch(() => {});
        await closeFile(state, true);
      }
    },
    activeRows(file) {
      for (const s of chains.values()) if (s.open?.file.path === file) return s.open.rows.slice();
      return undefined;
    },
    activeFiles() {
      return new Set([...chains.values()].flatMap((s) => (s.open ? [s.open.file.path] : [])));
    },
  };
}

export interface FileSinkOptions {
  dir: string;
  queueSize: number;
  batchSize?: number;
  rotateBytes?: number;
  /** Default: `<dir>-spool`; 0 bytes turns spooling off. */
  spoolDir?: string;
  spoolMaxBytes?: number;
  onFull?: 'serve' | 'refuse';
  shutdownFlushMs?: number;
  metrics: AuditMetrics;
  logger: Logger;
}

/** The file sink: chained files behind the bounded queue and the spool. */
export async function createFileSink(options: FileSinkOptions): Promise<AuditSink> {
  const backend = createFileBackend({ dir: options.dir, rotateBytes: options.rotateBytes ?? 64 * 1024 * 1024, logger: options.logger });
  const spoolMax = options.spoolMaxBytes ?? 1024 * 1024 * 1024;
  const spool = spoolMax > 0 ? await openSpool({ dir: options.spoolDir ?? `${options.dir.replace(/\/+$/, '')}-spool`, maxBytes: spoolMax }) : undefined;
  return createAuditWriter({
    backend,
    spool,
    queueSize: options.queueSize,
    batchSize: options.batchSize ?? 512,
    onFull: options.onFull ?? 'serve',
    shutdownFlushMs: options.shutdownFlushMs ?? 5000,
    metrics: options.metrics,
    logger: options.logger,
    query: createFileQuery(backend),
  });
}
