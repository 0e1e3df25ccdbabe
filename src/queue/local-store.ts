// The single instance's work store: everything in memory, every change
// appended to one journal file and fsynced before the call that made it
// resolves, replayed at start. So a batch survives a restart: lines without
// a result are queued again, results already written stay written. Writes
// that arrive together share one write and one fsync (group commit), so
// thousands of lines a second cost a few syncs, not thousands.
//
// The journal is compacted at start, and again while running whenever it
// has grown past twice its size after the last compaction (and past
// queue.compact_min_bytes): what the store holds now is written to a new
// file, synced, and renamed over the old one, in the writer's turn, so no
// entry is lost or written twice. A compaction also lets go of what no one
// reads any more: the results of final batches (their files hold them; their
// counts are kept) and of answered background responses. So the file stays
// within about twice what is live, however many lines pass through.
import { mkdirSync, readFileSync } from 'node:fs';
import { open, rename, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import type { BatchRecord, Delivery, LineCounts, LineResult, WorkItem, WorkStore } from './types.js';

type Entry =
  | { e: 'batch'; b: BatchRecord }
  | { e: 'enq'; items: WorkItem[] }
  | { e: 'done'; owner: string; id: string; r: LineResult }
  | { e: 'drop'; id: string }
  /** A final batch's counts, in place of its results (written by compaction only). */
  | { e: 'counts'; owner: string; c: LineCounts };

const JOURNAL = 'queue.jsonl';
const DEFAULT_COMPACT_MIN_BYTES = 64 * 1024 * 1024;

interface State {
  batches: Map<string, BatchRecord>;
  /** Items without a result, in the order they were queued. */
  waiting: Map<string, WorkItem>;
  results: Map<string, Map<number, LineResult>>;
  done: Set<string>;
  /** Final batches' counts: their results are let go at the next compaction. */
  counts: Map<string, LineCounts>;
}

const FINAL = new Set(['completed', 'failed', 'expired', 'cancelled']);

function countResults(results: Iterable<LineResult>): LineCounts {
  const c: LineCounts = { completed: 0, failed: 0, cancelled: 0 };
  for (const r of results) {
    if (r.outcome === 'ok') c.completed++;
    else if (r.outcome === 'cancelled') c.cancelled++;
    else c.failed++;
  }
  return c;
}

function apply(state: State, entry: Entry): void {
  switch (entry.e) {
    case 'batch':
      state.batches.set(entry.b.id, entry.b);
      return;
    case 'enq':
      for (const item of entry.items) if (!state.done.has(item.id)) state.waiting.set(item.id, item);
      return;
    case 'done': {
      state.done.add(entry.id);
      state.waiting.delete(entry.id);
      let results = state.results.get(entry.owner);
      if (!results) state.results.set(entry.owner, (results = new Map()));
      results.set(entry.r.index, entry.r);
      return;
    }
    case 'drop':
      state.done.add(entry.id);
      state.waiting.delete(entry.id);
      return;
    case 'counts':
      state.counts.set(entry.owner, entry.c);
  }
}

function replay(file: string): State {
  const state: State = { batches: new Map(), waiting: new Map(), results: new Map(), done: new Set(), counts: new Map() };
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return state;
    throw err;
  }
  for (const line of text.split('\n')) {
    if (!line) continue;
    // A line torn by a crash mid-write is the last one; nothing after it was acknowledged.
    try {
      apply(state, JSON.parse(line) as Entry);
    } catch {
      break;
    }
  }
  return state;
}

/**
 * Lets go of results no one reads any more: a final batch's (its counts
 * stay) and an answered background response's. The done markers left are
 * those of the results kept; an item let go of is in no queue any more.
 */
function prune(state: State): void {
  for (const [owner, results] of state.results) {
    const batch = state.batches.get(owner);
    if (batch && !FINAL.has(batch.status)) continue;
    if (batch) state.counts.set(owner, countResults(results.values()));
    state.results.delete(owner);
  }
  state.done = new Set();
  for (const [owner, results] of state.results) for (const r of results.values()) state.done.add(idOf(owner, r.index));
}

/** The state, pruned, as the fewest entries that rebuild it. */
function snapshot(state: State): string {
  prune(state);
  const lines: string[] = [];
  for (const b of state.batches.values()) lines.push(JSON.stringify({ e: 'batch', b }));
  for (const [owner, c] of state.counts) lines.push(JSON.stringify({ e: 'counts', owner, c }));
  for (const [owner, results] of state.results) {
    for (const r of results.values()) lines.push(JSON.stringify({ e: 'done', owner, id: idOf(owner, r.index), r }));
  }
  if (state.waiting.size > 0) lines.push(JSON.stringify({ e: 'enq', items: [...state.waiting.values()] }));
  return lines.length ? lines.join('\n') + '\n' : '';
}

function idOf(owner: string, index: number): string {
  return owner.startsWith('batch_') ? `${owner}:${index}` : owner;
}

export interface LocalWorkStore extends WorkStore {
  /** Called whenever items are queued, so an idle worker starts at once. */
  onEnqueue(listener: () => void): void;
}

export interface LocalWorkStoreOptions {
  /** The journal as it is now, for `lanegate batches` beside a running gateway (which owns the file: only it appends and compacts). */
  readOnly?: boolean;
  /** No compaction while running below this size (queue.compact_min_bytes). */
  compactMinBytes?: number;
}

export async function openLocalWorkStore(dir: string, options: LocalWorkStoreOptions = {}): Promise<LocalWorkStore> {
  const file = path.join(dir, JOURNAL);
  const state = replay(file);
  const compactMinBytes = options.compactMinBytes ?? DEFAULT_COMPACT_MIN_BYTES;
  let handle: FileHandle | undefined;
  /** The journal's size now, and just after the last compaction. */
  let bytes = 0;
  let compactedBytes = 0;
  /**
   * Writes the state as a new journal and puts it in the old one's place;
   * returns its handle, still open, to append to (nothing can fail between
   * the rename and the next append).
   */
  const compact = async (): Promise<FileHandle> => {
    const text = snapshot(state);
    const tmp = `${file}.compact`;
    const next = await open(tmp, 'w');
    try {
      await next.writeFile(text);
      await next.sync();
      await rename(tmp, file);
    } catch (err) {
      await next.close();
      throw err;
    }
    bytes = compactedBytes = Buffer.byteLength(text);
    return next;
  };
  if (!options.readOnly) {
    mkdirSync(dir, { recursive: true });
    handle = await compact();
  }

  // Group commit: entries written while a sync is under way go out together in the next one.
  let pending: string[] = [];
  let waiters: Array<{ resolve: () => void; reject: (err: unknown) => void }> = [];
  let flushing = false;
  let closed = false;
  async function flush(): Promise<void> {
    flushing = true;
    while (pending.length > 0) {
      const text = pending.join('');
      const settle = waiters;
      pending = [];
      waiters = [];
      try {
        let compacted = false;
        if (bytes >= compactMinBytes && bytes >= 2 * compactedBytes) {
          // The snapshot is taken now, in this same turn: it holds every entry applied so far, these pending ones too.
          try {
            const old = handle!;
            handle = await compact();
            compacted = true;
            await old.close().catch(() => {});
          } catch {
            // The old journal is untouched: append to it, and try again once it has doubled once more.
            compactedBytes = bytes;
          }
        }
        if (!compacted) {
          await handle!.write(text);
          await handle!.datasync();
          bytes += Buffer.byteLength(text);
        }
        for (const w of settle) w.resolve();
      } catch (err) {
        for (const w of settle) w.reject(err);
      }
    }
    flushing = false;
  }
  function write(entry: Entry): Promise<void> {
    if (closed || !handle) return Promise.reject(new Error(handle ? 'the work queue is closed' : 'the journal was opened read-only; the running gateway owns it'));
    apply(state, entry);
    pending.push(JSON.stringify(entry) + '\n');
    const done = new Promise<void>((resolve, reject) => waiters.push({ resolve, reject }));
    if (!flushing) void flush();
    return done;
  }

  // Claimed in this process and not finished yet: not handed out twice. A restart forgets them, so they run again.
  const claimed = new Set<string>();
  const listeners: Array<() => void> = [];
  const finalizing = new Set<string>();

  return {
    kind: 'local',
    onEnqueue: (listener) => void listeners.push(listener),
    putBatch: (batch) => write({ e: 'batch', b: structuredClone(batch) }),
    async updateBatch(id, change) {
      // One thread: reading, changing and applying (write() applies before it awaits the sync) happen with nothing in between.
      const current = state.batches.get(id);
      if (!current) return undefined;
      const next = change(structuredClone(current));
      if (!next) return { batch: structuredClone(current), changed: false };
      await write({ e: 'batch', b: structuredClone(next) });
      return { batch: next, changed: true };
    },
    async getBatch(id) {
      const b = state.batches.get(id);
      return b && structuredClone(b);
    },
    async listBatches(team) {
      return [...state.batches.values()].filter((b) => team === undefined || b.team === team).sort((a, b) => b.created_at - a.created_at || (a.id < b.id ? 1 : -1)).map((b) => structuredClone(b));
    },
    async enqueue(items) {
      if (items.length === 0) return;
      await write({ e: 'enq', items });
      for (const l of listeners) l();
    },
    async claim(_consumer, max) {
      const out: Delivery[] = [];
      for (const item of state.waiting.values()) {
        if (out.length >= max) break;
        if (claimed.has(item.id)) continue;
        claimed.add(item.id);
        out.push({ item, ref: item.id });
      }
      return out;
    },
    async isDone(item) {
      return state.done.has(item.id);
    },
    async complete(delivery, result) {
      const { item } = delivery;
      claimed.delete(item.id);
      if (state.done.has(item.id)) return false;
      await write({ e: 'done', owner: item.owner, id: item.id, r: result });
      return true;
    },
    async drop(delivery) {
      claimed.delete(delivery.item.id);
      if (!state.done.has(delivery.item.id)) await write({ e: 'drop', id: delivery.item.id });
    },
    // An item this process claimed and did not answer (a failure, a shutdown) stays claimed here: it runs again after a restart, not in a loop.
    release() {},
    async counts(owner) {
      const results = state.results.get(owner);
      return results ? countResults(results.values()) : { ...(state.counts.get(owner) ?? { completed: 0, failed: 0, cancelled: 0 }) };
    },
    async *eachResults(owner) {
      const all = [...(state.results.get(owner)?.values() ?? [])];
      for (let i = 0; i < all.length; i += 500) yield all.slice(i, i + 500);
    },
    async lockFinalize(owner) {
      // Lines finishing together each try; the first one finalizes. A restart forgets the lock, so a batch left finalizing is finished then.
      if (finalizing.has(owner)) return false;
      finalizing.add(owner);
      return true;
    },
    async activeBatches() {
      return [...state.batches.values()].filter((b) => b.status === 'in_progress' || b.status === 'cancelling' || b.status === 'finalizing').map((b) => b.id);
    },
    async stats() {
      let oldest = Infinity;
      for (const item of state.waiting.values()) {
        oldest = item.enqueuedAt;
        break;
      }
      return { depth: state.waiting.size, oldestAgeMs: oldest === Infinity ? 0 : Date.now() - oldest };
    },
    async close() {
      if (closed) return;
      closed = true;
      while (flushing) await new Promise((r) => setImmediate(r));
      await handle?.close();
    },
  };
}
