// A batch's end: once every line has its answer, one replica (the store's
// finalize lock) writes the output file (2xx answers) and the error file
// (the rest; cancelled lines are in neither) through the Files API, purpose
// batch_output, in the batch's team and lane, and sets the final status:
// cancelled when it was being cancelled, expired when some line ran out of
// window, completed otherwise.
import type { Services } from '../pipeline/context.js';
import type { BatchRecord, BatchStatus, LineCounts, WorkStore } from '../queue/types.js';

const FINAL: ReadonlySet<BatchStatus> = new Set(['completed', 'failed', 'expired', 'cancelled']);

export function isFinal(status: BatchStatus): boolean {
  return FINAL.has(status);
}

export async function finalizeBatch(o: { store: WorkStore; services: Services; batchId: string }): Promise<void> {
  const { store, services } = o;
  const batch = await store.getBatch(o.batchId);
  if (!batch || isFinal(batch.status)) return;
  const c = await store.counts(batch.id);
  if (c.completed + c.failed + c.cancelled < batch.total) return;
  if (!(await store.lockFinalize(batch.id))) return;
  const wasCancelling = batch.status === 'cancelling' || batch.cancelling_at !== null;
  const now = () => Math.floor(Date.now() / 1000);
  batch.status = 'finalizing';
  batch.finalizing_at = now();
  await store.putBatch(batch);
  const results = await store.results(batch.id);
  const ok = results.filter((r) => r.outcome === 'ok').map((r) => r.line);
  const failed = results.filter((r) => r.outcome === 'error' || r.outcome === 'expired').map((r) => r.line);
  const write = async (lines: string[], kind: 'output' | 'error') => {
    if (lines.length === 0) return null;
    const file = await services.files.create({ team: batch.team, lane: batch.lane, filename: `${batch.id}_${kind}.jsonl`, purpose: 'batch_output', content: Buffer.from(lines.join('\n') + '\n') });
    return file.id;
  };
  try {
    batch.output_file_id = await write(ok, 'output');
    batch.error_file_id = await write(failed, 'error');
  } catch (err) {
    services.logger.error({ err: String(err), batch: batch.id }, 'a batch\'s output could not be written; the batch failed');
    batch.status = 'failed';
    batch.failed_at = now();
    batch.errors = [{ code: 'output_unavailable', message: 'The batch ran, but its output file could not be written (see the gateway\'s logs).', param: null, line: null }];
    await store.putBatch(batch);
    return;
  }
  const expired = results.some((r) => r.outcome === 'expired');
  if (wasCancelling) {
    batch.status = 'cancelled';
    batch.cancelled_at = now();
  } else if (expired) {
    batch.status = 'expired';
    batch.expired_at = now();
  } else {
    batch.status = 'completed';
    batch.completed_at = now();
  }
  await store.putBatch(batch);
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
