// The single instance's work store: everything in memory, every change
// appended to one journal file and fsynced before the call that made it
// resolves, replayed at start. So a batch survives a restart: lines without
// a result are queued again, results already written stay written. Writes
// that arrive together share one write and one fsync (group commit), so
// thousands of lines a second cost a few syncs, not thousands.
//
// The journal is compacted at start, and again while running whenever it
// has grown past twice its size after the last compaction (and past
// queue.compact_min_bytes): what the store holds at one moment (the cut) is
// written to a new file, then the entries written since the cut, and the new
// file is synced and renamed over the old one in the writer's turn, so no
// entry is lost or written twice. While running, the new file is written in
// slices beside the requests (one JSON text of tens of MB held the event
// loop for seconds) and writes keep going to the old journal, synced as
// ever, until the rename. A compaction also lets go of what no one
// reads any more: the results of final batches (their files hold them; their
// counts are kept) and of answered background responses. So the file stays
// within about twice what is live, however many lines pass through.
import { mkdirSync, readFileSync } from 'node:fs';
import { open, rename, unlink, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { isFinal, type BatchRecord, type Delivery, type LineCounts, type LineResult, type WorkItem, type WorkStore } from './types.js';

type Entry =
  | { e: 'batch'; b: BatchRecord }
  | { e: 'enq'; items: WorkItem[] }
  | { e: 'done'; owner: string; id: string; r: LineResult }
  | { e: 'drop'; id: string }
  /** A final batch's counts, in place of its results (written by compaction only). */
  | { e: 'counts'; owner: string; c: LineCounts };

const JOURNAL = 'queue.jsonl';
const DEFAULT_COMPACT_MIN_BYTES = 64 * 1024 * 1024;
/** Queued items per `enq` line of a compacted journal. */
const ITEMS_PER_LINE = 1_000;
/** The longest a compaction holds the event loop before letting requests in. */
const SLICE_MS = 10;
/** Bytes of a compacted journal gathered before they are written. */
const WRITE_BYTES = 1024 * 1024;
/** Writes of entries made during a compaction into its new file before the switch (in case they arrive as fast as they are copied). */
const CATCH_UP_ROUNDS = 64;

interface State {
  batches: Map<string, BatchRecord>;
  /** Items without a result, in the order they were queued. */
  waiting: Map<string, WorkItem>;
  results: Map<string, Map<number, LineResult>>;
  done: Set<string>;
  /** Final batches' counts: their results are let go at the next compaction. */
  counts: Map<string, LineCounts>;
}

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
    if (batch && !isFinal(batch.status)) continue;
    if (batch) state.counts.set(owner, countResults(results.values()));
    state.results.delete(owner);
  }
  state.done = new Set();
  for (const [owner, results] of state.results) for (const r of results.values()) state.done.add(idOf(owner, r.index));
}

/** The state at a cut, pruned: what the compacted journal holds before the entries written since. */
interface Snapshot {
  batches: BatchRecord[];
  counts: Array<[string, LineCounts]>;
  results: Array<[string, LineResult[]]>;
  waiting: WorkItem[];
}

/**
 * Prunes the state and copies what it holds now (references: the records in
 * it are replaced on change, never changed in place), in one step: cheap next
 * to writing it out, which happens afterwards, a slice at a time.
 */
function cut(state: State): Snapshot {
  prune(state);
  return {
    batches: [...state.batches.values()],
    counts: [...state.counts],
    results: [...state.results].map(([owner, results]) => [owner, [...results.values()]]),
    waiting: [...state.waiting.values()],
  };
}

/** The snapshot as the fewest entries that rebuild it, as text a piece at a time (an `enq` line an item at a time). */
function* snapshotText(snap: Snapshot): Generator<string> {
  for (const b of snap.batches) yield JSON.stringify({ e: 'batch', b }) + '\n';
  for (const [owner, c] of snap.counts) yield JSON.stringify({ e: 'counts', owner, c }) + '\n';
  for (const [owner, results] of snap.results) {
    for (const r of results) yield JSON.stringify({ e: 'done', owner, id: idOf(owner, r.index), r }) + '\n';
  }
  for (let i = 0; i < snap.waiting.length; i += ITEMS_PER_LINE) {
    yield '{"e":"enq","items":[';
    const end = Math.min(snap.waiting.length, i + ITEMS_PER_LINE);
    for (let j = i; j < end; j++) yield (j > i ? ',' : '') + JSON.stringify(snap.waiting[j]);
    yield ']}\n';
  }
}

/** Writes the snapshot to an open file, yielding to the event loop every SLICE_MS; returns the bytes written. `stop` ends it early (the store is closing). */
async function writeSnapshot(handle: FileHandle, snap: Snapshot, stop: () => boolean): Promise<number> {
  let bytes = 0;
  let out = '';
  let since = performance.now();
  for (const piece of snapshotText(snap)) {
    out += piece;
    const due = performance.now() - since >= SLICE_MS;
    if (out.length < WRITE_BYTES && !due) continue;
    await handle.write(out);
    bytes += Buffer.byteLength(out);
    out = '';
    if (due) await new Promise((resolve) => setImmediate(resolve));
    if (stop()) throw new Error('the work queue is closing');
    since = performance.now();
  }
  await handle.write(out);
  return bytes + Buffer.byteLength(out);
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
  let closed = false;
  const tmp = `${file}.compact`;
  if (!options.readOnly) {
    mkdirSync(dir, { recursive: true });
    const next = await open(tmp, 'w');
    try {
      bytes = compactedBytes = await writeSnapshot(next, cut(state), () => false);
      await next.sync();
      await rename(tmp, file);
    } catch (err) {
      await next.close();
      throw err;
    }
    handle = next;
  }

  /**
   * A compaction under way while running: the new file once open, its size,
   * the entries written since the cut and not yet in it (they go to the old
   * journal as well), and whether it is synced and waits for the writer to
   * switch to it.
   */
  interface Compaction {
    next?: FileHandle;
    bytes: number;
    since: string[];
    ready: boolean;
    done: Promise<void>;
  }
  let compaction: Compaction | undefined;
  const startCompaction = (): void => {
    const c: Compaction = { bytes: 0, since: [], ready: false, done: Promise.resolve() };
    compaction = c;
    const snap = cut(state);
    const build = async (): Promise<void> => {
      c.next = await open(tmp, 'w');
      c.bytes = await writeSnapshot(c.next, snap, () => closed);
      // The entries written meanwhile are caught up here too, in the background, so the switch writes and syncs only the last few.
      for (let round = 0; round < CATCH_UP_ROUNDS && c.since.length > 0; round++) {
        let size = 0;
        let count = 0;
        while (count < c.since.length && size < WRITE_BYTES) size += c.since[count++]!.length;
        const out = c.since.splice(0, count).join('');
        await c.next.write(out);
        c.bytes += Buffer.byteLength(out);
        if (closed) throw new Error('the work queue is closing');
      }
      await c.next.sync();
      c.ready = true;
    };
    c.done = build().then(
      () => {
        if (!flushing && !closed) void flush();
      },
      async () => {
        // The old journal holds everything: append to it, and try again once it has doubled once more.
        await c.next?.close().catch(() => {});
        await unlink(tmp).catch(() => {});
        if (compaction === c) compaction = undefined;
        compactedBytes = bytes;
      },
    );
  };
  /**
   * In the writer's turn (nothing being appended): puts the last entries
   * written since the cut after the rest, syncs, and renames the new file
   * over the old journal. False when that failed: the old journal stays, the
   * caller appends to it.
   */
  const switchJournal = async (c: Compaction): Promise<boolean> => {
    const next = c.next!;
    // Entries written from here on are not in this text: they go to the journal in use after this (the new one, or the old one if this fails).
    const tail = c.since.join('');
    compaction = undefined;
    try {
      await next.write(tail);
      await next.sync();
      await rename(tmp, file);
    } catch {
      await next.close().catch(() => {});
      await unlink(tmp).catch(() => {});
      compactedBytes = bytes;
      return false;
    }
    const old = handle!;
    handle = next;
    bytes = compactedBytes = c.bytes + Buffer.byteLength(tail);
    await old.close().catch(() => {});
    return true;
  };

  // Group commit: entries written while a sync is under way go out together in the next one.
  let pending: string[] = [];
  let waiters: Array<{ resolve: () => void; reject: (err: unknown) => void }> = [];
  let flushing = false;
  async function flush(): Promise<void> {
    flushing = true;
    while (pending.length > 0 || (compaction?.ready && !closed)) {
      const text = pending.join('');
      const settle = waiters;
      pending = [];
      waiters = [];
      try {
        // Switching, the entries taken here are in the new file: those from before the cut in the snapshot, the rest caught up or in the switch's tail.
        const switched = compaction?.ready === true && !closed && (await switchJournal(compaction));
        if (!switched && text) {
          await handle!.write(text);
          await handle!.datasync();
          bytes += Buffer.byteLength(text);
        }
        for (const w of settle) w.resolve();
      } catch (err) {
        for (const w of settle) w.reject(err);
      }
      if (!compaction && !closed && bytes >= compactMinBytes && bytes >= 2 * compactedBytes) startCompaction();
    }
    flushing = false;
  }
  function write(entry: Entry): Promise<void> {
    if (closed || !handle) return Promise.reject(new Error(handle ? 'the work queue is closed' : 'the journal was opened read-only; the running gateway owns it'));
    apply(state, entry);
    const line = JSON.stringify(entry) + '\n';
    pending.push(line);
    compaction?.since.push(line);
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
    // Not started: the next claim hands it out again.
    async giveBack(delivery) {
      claimed.delete(delivery.item.id);
    },
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
    async unlockFinalize(owner) {
      finalizing.delete(owner);
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
      // A compaction under way stops at its next slice and removes its file; the old journal holds everything.
      await compaction?.done;
      if (compaction?.ready) {
        await compaction.next?.close().catch(() => {});
        await unlink(tmp).catch(() => {});
      }
      await handle?.close();
    },
  };
}
