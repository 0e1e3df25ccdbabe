// A batch's lines as queued work (queue/worker.ts's handler for kind
// "batch"): a line of a cancelled batch is answered `cancelled` without
// running, one past the batch's window `expired`; the rest run through the
// endpoint's pipeline with the batch key's identity. Each answer is one line
// of the output file (2xx) or the error file, in OpenAI's format. When the
// last line is answered, the batch is finalized (finalize.ts).
import type { CompiledConfig } from '../config/compile.js';
import type { Services } from '../pipeline/context.js';
import { queuedPipelines } from '../pipeline/index.js';
import type { Try } from '../queue/execute.js';
import { lineRequestId } from '../queue/execute.js';
import type { BatchEndpoint, LineResult, WorkItem, WorkStore } from '../queue/types.js';
import type { WorkHandler } from '../queue/worker.js';
import { finalizeBatch } from './finalize.js';

const PIPELINES = {
  '/v1/chat/completions': queuedPipelines.chat,
  '/v1/embeddings': queuedPipelines.embeddings,
  '/v1/responses': queuedPipelines.responses,
} as const satisfies Record<BatchEndpoint, unknown>;

/** How long the worker keeps a batch's record before reading it again. */
const BATCH_CACHE_MS = 250;

function errorLine(item: WorkItem, code: string, message: string): string {
  return JSON.stringify({ id: lineRequestId(), custom_id: item.customId, response: null, error: { code, message } });
}

export function createBatchHandler(o: { store: () => Promise<WorkStore>; config: () => CompiledConfig; services: () => Services }): WorkHandler {
  // Thousands of lines of one batch would otherwise read its record thousands of times.
  const cache = new Map<string, { at: number; batch: Awaited<ReturnType<WorkStore['getBatch']>> }>();
  const batchOf = async (id: string) => {
    const hit = cache.get(id);
    if (hit && Date.now() - hit.at < BATCH_CACHE_MS) return hit.batch;
    const batch = await (await o.store()).getBatch(id);
    if (cache.size > 1_000) cache.clear();
    cache.set(id, { at: Date.now(), batch });
    return batch;
  };
  const finalize = async (id: string) => finalizeBatch({ store: await o.store(), services: o.services(), batchId: id });
  return {
    async prepare(item) {
      const batch = await batchOf(item.owner);
      if (!batch) return 'drop';
      if (batch.status === 'cancelling' || batch.status === 'cancelled') return { result: { index: item.index, outcome: 'cancelled', line: '' } };
      const deadline = batch.expires_at * 1000;
      if (Date.now() >= deadline || batch.status === 'expired') {
        return { result: { index: item.index, outcome: 'expired', line: errorLine(item, 'batch_expired', 'This line was not run within the batch\'s completion window.') } };
      }
      return { pipeline: PIPELINES[batch.endpoint], runId: batch.id, deadline };
    },
    resultOf(item: WorkItem, t: Try): LineResult {
      const ok = t.status >= 200 && t.status < 300 && !t.error;
      // OpenAI's output line, with the body's text (serialised once, on one line: see runQueued) set in as it is.
      const id = JSON.stringify(t.ctx.id);
      const error = t.error ? JSON.stringify({ code: t.error.code, message: t.error.message }) : 'null';
      const line = `{"id":${id},"custom_id":${JSON.stringify(item.customId)},"response":{"status_code":${t.status},"request_id":${id},"body":${t.text}},"error":${error}}`;
      return { index: item.index, outcome: ok ? 'ok' : 'error', line };
    },
    async recorded(item) {
      await finalize(item.owner);
    },
    async sweep() {
      const store = await o.store();
      for (const id of await store.activeBatches()) await finalize(id);
    },
  };
}
