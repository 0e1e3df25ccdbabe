// The `queue:` section: where the single instance keeps its journal, and how
// the worker drains queued work (batch lines, background responses) with the
// capacity interactive traffic leaves.
import path from 'node:path';
import { z } from 'zod';

export const queueConfigSchema = z
  .strictObject({
    /** The single instance's journal folder; default: `queue/` beside the audit folder (./data/queue). Unused with Redis. */
    dir: z.string().min(1).optional(),
    /** Lines one replica runs at once, at most; the worker halves its own pace on upstream 429s and overload, and grows it back. */
    concurrency: z.number().int().positive().max(4_096).default(16),
    /**
     * Cut the lines in flight while the event loop is busy (85% of the time)
     * or late, so interactive requests never wait for the CPU behind queued
     * work. false: up to `concurrency` whatever the loop does (a replica that
     * serves only queued work).
     */
    yield_cpu: z.boolean().default(true),
    /** A line another replica claimed and has not finished within this is delivered again (that replica died mid-line). */
    claim_idle_ms: z.number().int().min(100).max(3_600_000).default(120_000),
    /** The single instance's journal is compacted while running once it is past this size and twice its size after the last compaction. */
    compact_min_bytes: z.number().int().min(0).max(2 ** 40).default(64 * 1024 * 1024),
    /** How often an idle worker looks for new work. */
    poll_ms: z.number().int().min(5).max(60_000).default(200),
    /** Tries of one line on retryable errors (429s, overload, upstream failures) before it fails. */
    max_attempts: z.number().int().positive().max(100).default(6),
    /** First backoff after a retryable error; doubles per try, capped at 30 s, or the retry-after given. */
    backoff_ms: z.number().int().min(0).max(60_000).default(500),
  })
  .prefault({});

export type QueueConfig = z.infer<typeof queueConfigSchema>;

/** Where the single instance keeps its journal: queue.dir, or `queue/` beside the audit trail's folder. */
export function queueDir(queue: QueueConfig, auditDir: string): string {
  return queue.dir ?? path.join(path.dirname(path.resolve(auditDir)), 'queue');
}
