// A batch's end: once every line has its answer, one replica (the store's
// finalize lock) writes the output file (2xx answers) and the error file
// (the rest; cancelled lines are in neither) through the Files API, purpose
// batch_output, in the batch's team and lane, and sets the final status:
// cancelled when it was being cancelled, expired when some line ran out of
// window, completed otherwise.
import type { Services } from '../pipeline/context.js';
import { isFinal, type BatchRecord, type LineCounts, type LineResult, type WorkStore } from '../queue/types.js';

export { isFinal };

const nowS = () => Math.floor(Date.now() / 1000);

export async function finalizeBatch(o: { store: WorkStore; services: Services; batchId: string }): Promise<void> {
  const { store } = o;
  const seen = await store.getBatch(o.batchId);
  if (!seen || isFinal(seen.status)) return;
  const c = await store.counts(seen.id);
  if (c.completed + c.failed + c.cancelled < seen.total) return;
  // One finalizer at a time; a lock that outlives its holder (it died) lets the sweep take a batch left finalizing over.
  if (!(await store.lockFinalize(seen.id))) return;
  try {
    await finalizeLocked({ ...o, counts: c });
  } finally {
    // Unreachable Redis: the lock is no longer renewed and runs out by itself.
    await store.unlockFinalize(seen.id).catch(() => undefined);
  }
}

async function finalizeLocked(o: { store: WorkStore; services: Services; batchId: string; counts: LineCounts }): Promise<void> {
  const { store, services, counts: c } = o;
  // Every status change is a compare-and-set (updateBatch): a cancel that came first is kept (the batch ends
  // cancelled), one that comes later finds the batch finalizing and is refused; neither undoes the other.
  const began = await store.updateBatch(o.batchId, (b) => (b.status === 'in_progress' || b.status === 'cancelling' ? { ...b, status: 'finalizing', finalizing_at: nowS() } : undefined));
  if (!began || began.batch.status !== 'finalizing') return;
  const batch = began.batch;
  // Each file is streamed to the store a chunk of results at a time: a batch's answers are never held whole.
  let expired = false;
  async function* linesOf(keep: (r: LineResult) => boolean): AsyncIterable<Buffer> {
    for await (const chunk of store.eachResults(batch.id)) {
      let text = '';
      for (const r of chunk) {
        if (!keep(r)) continue;
        if (r.outcome === 'expired') expired = true;
        text += r.line + '\n';
      }
      if (text) yield Buffer.from(text);
    }
  }
  const written: string[] = [];
  const write = async (count: number, kind: 'output' | 'error', keep: (r: LineResult) => boolean) => {
    if (count === 0) return null;
    const file = await services.files.createFromStream({ team: batch.team, lane: batch.lane, filename: `${batch.id}_${kind}.jsonl`, purpose: 'batch_output', content: linesOf(keep) });
    written.push(file.id);
    return file.id;
  };
  let files: { output: string | null; error: string | null };
  try {
    files = {
      output: await write(c.completed, 'output', (r) => r.outcome === 'ok'),
      error: await write(c.failed, 'error', (r) => r.outcome === 'error' || r.outcome === 'expired'),
    };
  } catch (err) {
    services.logger.error({ err: String(err), batch: batch.id }, "a batch's output could not be written; the batch failed");
    await store.updateBatch(batch.id, (b) =>
      b.status === 'finalizing'
        ? { ...b, status: 'failed', failed_at: nowS(), errors: [{ code: 'output_unavailable', message: "The batch ran, but its output file could not be written (see the gateway's logs).", param: null, line: null }] }
        : undefined,
    );
    return;
  }
  const ended = await store.updateBatch(batch.id, (b) => {
    if (b.status !== 'finalizing') return undefined;
    const done = { ...b, output_file_id: files.output, error_file_id: files.error };
    if (b.cancelling_at !== null) return { ...done, status: 'cancelled', cancelled_at: nowS() };
    if (expired) return { ...done, status: 'expired', expired_at: nowS() };
    return { ...done, status: 'completed', completed_at: nowS() };
  });
  // Another finalizer (this one's lock ran out) ended it first: its files are the batch's; these are nobody's.
  if (!ended?.changed) for (const id of written) await services.files.delete(batch.team, id).catch(() => false);
}

/** The Batch object as OpenAI's API shows it. */
export function batchObject(batch: BatchRecord, counts: LineCounts): Record<string, unknown> {
  return {
    id: batch.id,
    object: 'batch',
    endpoint: batch.endpoint,
    errors: batch.errors ? { object: 'list', data: batch.errors } : null,
    input_file_id: batch.input_file_id,
    completion_window: batch.completion_window,
    status: batch.status,
    output_file_id: batch.output_file_id,
    error_file_id: batch.error_file_id,
    created_at: batch.created_at,
    in_progress_at: batch.in_progress_at,
    expires_at: batch.expires_at,
    finalizing_at: batch.finalizing_at,
    completed_at: batch.completed_at,
    failed_at: batch.failed_at,
    expired_at: batch.expired_at,
    cancelling_at: batch.cancelling_at,
    cancelled_at: batch.cancelled_at,
    request_counts: { total: batch.total, completed: counts.completed, failed: counts.failed },
    metadata: batch.metadata,
  };
}
