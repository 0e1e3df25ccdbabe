// The intent log: what keeps a crash from losing a record silently.
//
// A request's record can only be written once the request is over (it holds
// the answer, its timings, its cost), and records wait ~25 ms in memory to
// be written in batches. A process killed meanwhile took records of answers
// the clients already had, and nothing said so. So before an answer's first
// byte the gateway writes one short line, the request's id and lane, to this
// log, and the answer waits for it:
//
//   answer ready ─> id queued ─> (end of this turn of the event loop) one
//   write() of every id queued this turn ─> the answers go out
//
// The write is synchronous on purpose: it is one small write() to the page
// cache per turn (a process crash keeps what the kernel has; only a host
// crash needs fsync), where the thread pool would add a round trip to every
// answer. Once a record is in the sink or the spool its id is settled; a
// segment of the log whose ids are all settled is deleted. Segments left
// behind by a run that did not stop cleanly are what the next start (and
// `lanegate audit verify`) compare with the trail: see read/crash-check.ts.
//
//   <audit.dir>/intents/<opened ms>-<pid>-<seq>.log
//   first line: {"host","pid","started"} (when the segment was opened); then
//   one "<id>\t<lane>" a request
//
// Segments are cut at 1 MB and every minute, so what a crash leaves behind
// is recent: the check after it reads only files written since.
import { closeSync, mkdirSync, openSync, unlinkSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import path from 'node:path';
import type { Logger } from '../../telemetry/logger.js';

/** A segment is closed (and deleted once settled) at this size or age. */
const SEGMENT_MAX_BYTES = 1024 * 1024;
const SEGMENT_MAX_AGE_MS = 60_000;
const ERROR_LOG_INTERVAL_MS = 10_000;

export interface IntentLog {
  /**
   * Resolves once the request's id is in the log (handed to the kernel).
   * Call before the answer's first byte; every id of a turn shares one write.
   */
  promise(id: string, lane: string | undefined): Promise<void>;
  /** The request's record is in the sink or the spool (or its loss was counted). */
  settle(id: string): void;
  /** Closes the log; the last segment goes too when nothing in it is outstanding. */
  close(): void;
}

export interface IntentHeader {
  host: string;
  pid: number;
  started: number;
}

interface Segment {
  path: string;
  opened: number;
  fd: number;
  bytes: number;
  outstanding: number;
}

export function intentsDir(auditDir: string): string {
  return path.join(auditDir, 'intents');
}

export const INTENT_FILE = /^(\d+)-(\d+)-(\d+)\.log$/;

export function openIntentLog(o: { dir: string; logger: Logger }): IntentLog {
  const { dir, logger } = o;
  const host = hostname();
  let seq = 0;
  let current: Segment | undefined;
  let closed = false;
  const owner = new Map<string, Segment>();
  let ids: string[] = [];
  let text = '';
  let turn: Promise<void> | undefined;
  let release: () => void = () => {};
  let lastErrorLog = 0;
  let unwritten = 0;

  function openSegment(): Segment {
    mkdirSync(dir, { recursive: true });
    const opened = Date.now();
    const file = path.join(dir, `${opened}-${process.pid}-${seq++}.log`);
    const fd = openSync(file, 'a', 0o640);
    const header = Buffer.from(`${JSON.stringify({ host, pid: process.pid, started: opened } satisfies IntentHeader)}\n`);
    const segment: Segment = { path: file, opened, fd, bytes: 0, outstanding: 0 };
    writeAllSync(fd, header);
    segment.bytes = header.length;
    return segment;
  }

  function retire(segment: Segment): void {
    closeSync(segment.fd);
    if (segment.outstanding === 0) remove(segment);
  }

  function remove(segment: Segment): void {
    try {
      unlinkSync(segment.path);
    } catch {
      // Already gone (someone cleaned the folder): nothing to compare later either way.
    }
  }

  function flush(): void {
    const batch = ids;
    const lines = text;
    const done = release;
    ids = [];
    text = '';
    turn = undefined;
    try {
      if (closed) throw new Error('the intent log is closed');
      if (current && (current.bytes >= SEGMENT_MAX_BYTES || Date.now() - current.opened >= SEGMENT_MAX_AGE_MS)) {
        const old = current;
        current = undefined;
        retire(old);
      }
      current ??= openSegment();
      const bytes = Buffer.from(lines);
      writeAllSync(current.fd, bytes);
      current.bytes += bytes.length;
      current.outstanding += batch.length;
      for (const id of batch) owner.set(id, current);
    } catch (err) {
      // The answers still go out (their records follow the usual path), but a
      // crash now could lose records without a trace: say so, loudly.
      unwritten += batch.length;
      const now = Date.now();
      if (now - lastErrorLog >= ERROR_LOG_INTERVAL_MS) {
        lastErrorLog = now;
        const code = (err as NodeJS.ErrnoException).code;
        logger.error(
          { code, err: err instanceof Error ? err.message : String(err), dir, unwritten },
          `cannot write the audit intent log${code === 'ENOSPC' ? ' (disk full)' : ''}: answers go out without it, so a crash now could lose audit records undetected`,
        );
        unwritten = 0;
      }
    }
    done();
  }

  return {
    promise(id, lane) {
      ids.push(id);
      text += `${id}\t${lane ?? ''}\n`;
      if (!turn) {
        turn = new Promise<void>((resolve) => (release = resolve));
        setImmediate(flush);
      }
      return turn;
    },
    settle(id) {
      const segment = owner.get(id);
      if (!segment) return;
      owner.delete(id);
      segment.outstanding--;
      if (segment.outstanding === 0 && segment !== current) remove(segment);
    },
    close() {
      if (closed) return;
      closed = true;
      if (current) {
        const last = current;
        current = undefined;
        retire(last);
      }
    },
  };
}

function writeAllSync(fd: number, data: Buffer): void {
  let written = 0;
  while (written < data.length) {
    const n = writeSync(fd, data, written, data.length - written);
    if (n <= 0) throw Object.assign(new Error('the file accepted no bytes'), { code: 'EIO' });
    written += n;
  }
}
