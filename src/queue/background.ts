// Background responses (POST /v1/responses with background: true) as queued
// work: the queued Response is stored at once (api/responses/stages.ts,
// queueBackground); the worker marks it in_progress, runs the request through
// the Responses pipeline with the key's identity (whose storeResponse stage
// stores the completed Response under the same id), or stores it failed. A
// response cancelled meanwhile stays cancelled: what the run answered is not
// stored over it.
import { keyById } from '../auth/keys.js';
import type { CompiledConfig } from '../config/compile.js';
import { queuedPipelines } from '../pipeline/index.js';
import type { Services } from '../pipeline/context.js';
import { DEFAULT_MAX_RETENTION_DAYS, storedResponseTtlMs, type StoredResponse } from '../api/responses/store.js';
import type { WorkHandler } from './worker.js';
import type { WorkItem } from './types.js';

const FINAL = new Set(['completed', 'failed', 'incomplete', 'cancelled']);

export function createBackgroundHandler(o: { config: () => CompiledConfig; services: () => Services }): WorkHandler {
  const ttlOf = (keyId: string): number => {
    const config = o.config();
    const lane = config.policies.lanes.get(keyById(config, keyId)?.lane ?? '');
    return lane ? storedResponseTtlMs(lane) : DEFAULT_MAX_RETENTION_DAYS * 86_400_000;
  };
  const load = async (item: WorkItem): Promise<StoredResponse | undefined> => {
    const key = keyById(o.config(), item.keyId);
    const store = o.services().responses;
    if (!key || !store) return undefined;
    return store.get(key.team, item.owner);
  };
  /** A compare-and-set on the stored Response: a cancel that lands meanwhile is never written over. */
  const update = async (item: WorkItem, change: (r: StoredResponse) => StoredResponse | undefined) => {
    const key = keyById(o.config(), item.keyId);
    const store = o.services().responses;
    if (!key || !store) return undefined;
    return store.update(key.team, item.owner, change, ttlOf(item.keyId));
  };
  return {
    async prepare(item) {
      // queued -> in_progress; one in_progress already was taken over from a replica that stopped mid-run, and runs again.
      const started = await update(item, (r) => (r.response.status === 'queued' ? { ...r, response: { ...r.response, status: 'in_progress' } } : undefined));
      // Deleted, expired, or its key removed: nobody can read an answer.
      if (!started) return 'drop';
      const status = started.record.response.status;
      if (FINAL.has(status)) return { result: { index: 0, outcome: status === 'cancelled' ? 'cancelled' : 'ok', line: '' } };
      return { pipeline: queuedPipelines.responses, runId: item.owner, deadline: Number.POSITIVE_INFINITY };
    },
    async resultOf(item, t) {
      const record = await load(item);
      if (!record || record.response.status === 'cancelled') {
        // Cancelled while it ran: the storeResponse stage has nothing to store (and stores only over in_progress anyway).
        if (t.ctx.responses) t.ctx.responses.response = undefined;
        return { index: 0, outcome: 'cancelled', line: '' };
      }
      return { index: 0, outcome: t.error ? 'error' : 'ok', line: '' };
    },
    async recorded(item, result, t) {
      if (!result || result.outcome !== 'error' || !t?.error) return;
      const error = { code: t.error.code, message: t.error.message };
      await update(item, (r) => (r.response.status === 'in_progress' ? { ...r, response: { ...r.response, status: 'failed', error } } : undefined));
    },
  };
}
