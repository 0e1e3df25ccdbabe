// Reading and cancelling batches, scoped to a team: another team's batch, and
// one that never existed, are the same 404, so ids cannot be probed. Shared
// by the HTTP API (server/batches.ts) and `lanegate batches`.
import { GatewayError } from '../errors.js';
import type { BatchRecord, WorkStore } from '../queue/types.js';
import { batchObject, finalizeBatch, isFinal } from './finalize.js';
import type { Services } from '../pipeline/context.js';

function notFound(id: string): GatewayError {
  return new GatewayError('not_found', `No batch "${id}" for this key's team.`, { param: 'batch_id' });
}

export async function readBatch(store: WorkStore, team: string | undefined, id: string): Promise<BatchRecord> {
  const batch = await store.getBatch(id);
  // team undefined: the operator's CLI, which sees every team's batches.
  if (!batch || (team !== undefined && batch.team !== team)) throw notFound(id);
  return batch;
}

export async function showBatch(store: WorkStore, batch: BatchRecord): Promise<Record<string, unknown>> {
  return batchObject(batch, await store.counts(batch.id));
}

export interface BatchPage {
  object: 'list';
  data: Array<Record<string, unknown>>;
  first_id: string | null;
  last_id: string | null;
  has_more: boolean;
}

/** Newest first; `after` is the last id of the page before. */
export async function listBatches(store: WorkStore, team: string | undefined, o: { after?: string; limit?: number }): Promise<BatchPage> {
  const limit = o.limit ?? 20;
  if (!Number.isInteger(limit) || limit < 1 || limit > 100) throw new GatewayError('invalid_request', 'limit must be an integer from 1 to 100.', { param: 'limit' });
  const all = await store.listBatches(team);
  let start = 0;
  if (o.after) {
    const at = all.findIndex((b) => b.id === o.after);
    if (at < 0) throw new GatewayError('invalid_request', `after names no batch of this key's team.`, { param: 'after' });
    start = at + 1;
  }
  const page = all.slice(start, start + limit);
  const data = await Promise.all(page.map((b) => showBatch(store, b)));
  return { object: 'list', data, first_id: page[0]?.id ?? null, last_id: page.at(-1)?.id ?? null, has_more: start + limit < all.length };
}

/**
 * Marks the batch cancelling, atomically (a compare-and-set against the
 * finalizer's own transitions): a batch in progress becomes `cancelling`;
 * one already cancelling or cancelled is left as it is; one finalizing (every
 * line has its answer) or otherwise final is refused.
 */
export async function requestCancel(store: WorkStore, batch: BatchRecord): Promise<BatchRecord> {
  const update = await store.updateBatch(batch.id, (b) => (b.status === 'validating' || b.status === 'in_progress' ? { ...b, status: 'cancelling', cancelling_at: Math.floor(Date.now() / 1000) } : undefined));
  if (!update) throw notFound(batch.id);
  const { status } = update.batch;
  if (status === 'finalizing' || (isFinal(status) && status !== 'cancelled')) {
    throw new GatewayError('invalid_request', `Batch "${batch.id}" is ${status}; only a batch in progress can be cancelled.`, { param: 'batch_id' });
  }
  return update.batch;
}

/**
 * Cancelling: lines not yet run are answered `cancelled` without running as
 * the worker reaches them, lines running finish; then the batch is finalized
 * as `cancelled` with the answers it has.
 */
export async function cancelBatch(store: WorkStore, services: Services, batch: BatchRecord): Promise<Record<string, unknown>> {
  const marked = await requestCancel(store, batch);
  if (marked.status === 'cancelling') await finalizeBatch({ store, services, batchId: batch.id });
  return showBatch(store, (await store.getBatch(batch.id)) ?? marked);
}
