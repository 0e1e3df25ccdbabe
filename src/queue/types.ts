// The durable work queue's shapes: a batch (the job a client created), its
// lines (one unit of work each, run through the pipeline like any request)
// and each line's one result. Two stores keep them (local-store.ts: a journal
// file for the single instance; redis-store.ts: Streams with a consumer group
// for replicas); the worker (worker.ts) is the same over both.

export const BATCH_ENDPOINTS = ['/v1/chat/completions', '/v1/embeddings', '/v1/responses'] as const;
export type BatchEndpoint = (typeof BATCH_ENDPOINTS)[number];

export const BATCH_STATUSES = ['validating', 'failed', 'in_progress', 'finalizing', 'completed', 'expired', 'cancelling', 'cancelled'] as const;
export type BatchStatus = (typeof BATCH_STATUSES)[number];

const FINAL_STATUSES: ReadonlySet<string> = new Set<BatchStatus>(['completed', 'failed', 'expired', 'cancelled']);

/** A batch in one of these statuses never changes again: compaction may drop its lines' results, and the sweep leaves it. */
export function isFinal(status: string): boolean {
  return FINAL_STATUSES.has(status);
}

export interface BatchError {
  code: string;
  message: string;
  param: string | null;
  line: number | null;
}

/** A batch as the gateway keeps it: OpenAI's Batch object plus who owns it. */
export interface BatchRecord {
  id: string;
  /** The key's team owns it: another team's key reads it as absent. */
  team: string;
  /** The key the batch was created with: every line runs with its identity. */
  keyId: string;
  lane: string;
  endpoint: BatchEndpoint;
  input_file_id: string;
  completion_window: '24h';
  metadata: Record<string, string> | null;
  status: BatchStatus;
  /** Unix seconds. */
  created_at: number;
  expires_at: number;
  in_progress_at: number | null;
  finalizing_at: number | null;
  completed_at: number | null;
  failed_at: number | null;
  expired_at: number | null;
  cancelling_at: number | null;
  cancelled_at: number | null;
  output_file_id: string | null;
  error_file_id: string | null;
  errors: BatchError[] | null;
  total: number;
}

/** One line of a batch (kind "batch") or one background response (kind "response"). */
export interface WorkItem {
  /** `<batch id>:<line index>` or the response id: the done marker's key. */
  id: string;
  kind: 'batch' | 'response';
  /** The batch, or the background response's id. */
  owner: string;
  index: number;
  customId: string;
  /** The key it was queued with: it runs with that key's identity. */
  keyId: string;
  /** The line's request body. */
  body: Record<string, unknown>;
  /** Unix ms, for the oldest job's age. */
  enqueuedAt: number;
}

/** A line's one answer. `cancelled` lines are left out of both files. */
export interface LineResult {
  index: number;
  outcome: 'ok' | 'error' | 'expired' | 'cancelled';
  /** The line as the output or error file holds it (JSON text); empty for cancelled. */
  line: string;
}

export interface LineCounts {
  completed: number;
  failed: number;
  cancelled: number;
}

/** A claimed item; `stale` when it was reclaimed from a consumer that stopped answering. */
export interface Delivery {
  item: WorkItem;
  /** The store's own handle (a stream entry id). */
  ref: string;
}

/** What updateBatch did: the record as it now is, and whether this call changed it. */
export interface BatchUpdate {
  batch: BatchRecord;
  changed: boolean;
}

export interface WorkStore {
  readonly kind: 'local' | 'redis';
  /** Stores a new batch (create). Every later change goes through updateBatch. */
  putBatch(batch: BatchRecord): Promise<void>;
  /**
   * Changes a batch atomically (compare-and-set): `change` gets the record as
   * stored and returns the new one, or undefined to leave it; with Redis it
   * is called again if another writer changed the record meanwhile, so it
   * must be a pure function of its argument. A status transition written
   * this way cannot be lost to, or undo, a concurrent one (cancel against
   * finalize). undefined when there is no such batch.
   */
  updateBatch(id: string, change: (batch: BatchRecord) => BatchRecord | undefined): Promise<BatchUpdate | undefined>;
  getBatch(id: string): Promise<BatchRecord | undefined>;
  /** The team's batches, newest first; no team (the operator's CLI): every batch (Redis: every batch not yet final). */
  listBatches(team: string | undefined): Promise<BatchRecord[]>;
  enqueue(items: WorkItem[]): Promise<void>;
  /**
   * Up to `max` items to run: new ones, and ones another consumer took but
   * has not finished within the claim timeout (it died mid-line).
   */
  claim(consumer: string, max: number): Promise<Delivery[]>;
  /** True when the item already has its result (another consumer finished it). */
  isDone(item: WorkItem): Promise<boolean>;
  /**
   * Records the result and acknowledges the item, atomically, once: false when
   * the item already had a result (nothing is written then).
   */
  complete(delivery: Delivery, result: LineResult): Promise<boolean>;
  /** Acknowledges an item that needs no result (its owner is gone). */
  drop(delivery: Delivery): Promise<void>;
  /**
   * The worker is done with a delivery, answered or not (complete, drop, or
   * abandoned at shutdown or by a failure): the store stops holding it for
   * this consumer (Redis: stops renewing the claim, so an unanswered item is
   * taken over after claim_idle_ms). Safe to call more than once.
   */
  release(delivery: Delivery): void;
  /**
   * Hands back an item this consumer claimed and has not started: any
   * consumer may claim it at once (Redis: it is marked idle for the claim
   * timeout, so the next XAUTOCLAIM of any replica takes it). Releases it too.
   */
  giveBack(delivery: Delivery): Promise<void>;
  counts(batchId: string): Promise<LineCounts>;
  /** Every result of a batch, a chunk at a time (never all at once), in no particular order. */
  eachResults(batchId: string): AsyncIterable<LineResult[]>;
  /** Batches not yet final (in progress, cancelling, finalizing): the worker's sweep looks at these. */
  activeBatches(): Promise<string[]>;
  /**
   * Takes the right to finalize a batch: true for exactly one caller. A store
   * whose lock can run out (Redis: a replica may die holding it) keeps it
   * alive until unlockFinalize.
   */
  lockFinalize(batchId: string): Promise<boolean>;
  /** The finalize is over (ended or given up): stop keeping the lock, and free it. */
  unlockFinalize(batchId: string): Promise<void>;
  /** Items waiting or running, and the oldest one's age in ms. */
  stats(): Promise<{ depth: number; oldestAgeMs: number }>;
  close(): Promise<void>;
}

/** The queue as the rest of the gateway sees it (Services.queue). */
export interface QueueService {
  /** The store, once open. */
  store(): Promise<WorkStore>;
  /** Opens the store and starts the worker (the server does, after it listens). */
  start(): Promise<void>;
  /** Stops claiming work, lets lines in flight finish for up to `graceMs`, leaves the rest queued. */
  stop(graceMs: number): Promise<void>;
  /** Aborts this process's run of the owner's work, if it is running here. */
  abortRunning(owner: string, reason: Error): void;
}
