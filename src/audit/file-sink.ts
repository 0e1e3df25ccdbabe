// The minimal audit sink: JSONL files, one per UTC day, appended in batches
// off the request path through a bounded queue. Records that cannot be queued
// or written are counted in a metric and logged, never dropped silently.
import { mkdir, open, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from '../telemetry/logger.js';
import type { Metrics } from '../telemetry/metrics.js';
import type { AuditEntry } from './record.js';

export interface AuditSink {
  write(record: AuditEntry): void;
  /** Resolves once every record queued so far is on disk. */
  flush(): Promise<void>;
  close(): Promise<void>;
}

export interface FileSinkOptions {
  dir: string;
  queueSize: number;
  metrics: Metrics;
  logger: Logger;
}

const BATCH = 512;

export function createFileSink(options: FileSinkOptions): AuditSink {
  const { dir, queueSize, metrics, logger } = options;
  let queue: AuditEntry[] = [];
  let draining: Promise<void> | undefined;
  let file: { day: string; handle: FileHandle } | undefined;
  let lastDropLog = 0;

  function drop(count: number, reason: string, err?: unknown) {
    metrics.auditDropped.inc(count);
    const now = Date.now();
    if (now - lastDropLog > 10_000) {
      lastDropLog = now;
      logger.error({ err, dropped: count, reason }, 'audit records lost');
    }
  }

  async function handleFor(day: string): Promise<FileHandle> {
    if (file?.day === day) return file.handle;
    await file?.handle.close().catch(() => {});
    await mkdir(dir, { recursive: true });
    const handle = await open(path.join(dir, `audit-${day}.jsonl`), 'a', 0o640);
    file = { day, handle };
    return handle;
  }

  async function drain(): Promise<void> {
    while (queue.length > 0) {
      const batch = queue.length <= BATCH ? queue : queue.slice(0, BATCH);
      queue = queue.length <= BATCH ? [] : queue.slice(BATCH);
      metrics.auditQueueDepth.set(queue.length);
      // A batch may straddle midnight: write each day's records to its own file.
      let start = 0;
      while (start < batch.length) {
        const day = batch[start]!.time.slice(0, 10);
        let end = start + 1;
        while (end < batch.length && batch[end]!.time.slice(0, 10) === day) end++;
        let text = '';
        for (let i = start; i < end; i++) text += JSON.stringify(batch[i]) + '\n';
        try {
          await (await handleFor(day)).write(text);
        } catch (err) {
          drop(end - start, 'write failed', err);
          await file?.handle.close().catch(() => {});
          file = undefined;
        }
        start = end;
      }
    }
  }

  function schedule(): Promise<void> {
    draining ??= new Promise<void>((resolve) => setImmediate(resolve))
      .then(drain)
      .finally(() => {
        draining = undefined;
        if (queue.length > 0) void schedule();
      });
    return draining;
  }

  return {
    write(record) {
      if (queue.length >= queueSize) {
        drop(1, 'queue full');
        return;
      }
      queue.push(record);
      if (!draining) void schedule();
    },
    async flush() {
      while (draining || queue.length > 0) await (draining ?? schedule());
      await file?.handle.datasync().catch(() => {});
    },
    async close() {
      await this.flush();
      await file?.handle.close().catch(() => {});
      file = undefined;
    },
  };
}

export function createNullSink(): AuditSink {
  return { write() {}, async flush() {}, async close() {} };
}
