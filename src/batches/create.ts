// POST /v1/batches: the request validated, the input file read (the key's
// team's only) and checked line by line against the batch's endpoint, then
// the batch stored and its lines queued. A file with bad lines makes a
// `failed` batch whose errors name each line, as OpenAI's does; nothing of
// it is queued.
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import type { CompiledConfig, KeyInfo } from '../config/compile.js';
import { readBatchInput } from '../files/batch-input.js';
import { GatewayError } from '../errors.js';
import type { Services } from '../pipeline/context.js';
import { BATCH_ENDPOINTS, type BatchError, type BatchRecord, type WorkItem } from '../queue/types.js';
import { validateBody } from '../api/validate.js';

/** OpenAI's limit per batch. */
export const MAX_BATCH_LINES = 50_000;
const WINDOW_S = 24 * 3600;

const createSchema = z.looseObject({
  input_file_id: z.string().min(1).max(200),
  endpoint: z.enum(BATCH_ENDPOINTS, { error: `endpoint must be one of ${BATCH_ENDPOINTS.join(', ')}` }),
  completion_window: z.literal('24h', { error: 'completion_window must be "24h"' }),
  metadata: z.record(z.string().max(64), z.string().max(512)).refine((m) => Object.keys(m).length <= 16, 'metadata holds at most 16 pairs').nullable().optional(),
});

export function createBatchId(): string {
  return `batch_${randomBytes(16).toString('hex')}`;
}

interface ParsedLines {
  items: Array<{ customId: string; body: Record<string, unknown> }>;
  errors: BatchError[];
}

/**
 * The file's request lines, read with the parser the upload validated them
 * with (files/batch-input.ts), each for the batch's endpoint. A bad line is
 * the batch's error, naming the line, as OpenAI reports it.
 */
export function parseBatchLines(content: Buffer, endpoint: string, limits: { maxLines: number; maxDepth: number }): ParsedLines {
  const items: ParsedLines['items'] = [];
  try {
    for (const l of readBatchInput(content, limits)) {
      if (l.url !== endpoint) return { items, errors: [{ code: 'mismatched_endpoint', message: `Line ${l.line}: url ${l.url} is not the batch's endpoint, ${endpoint}.`, param: 'url', line: l.line }] };
      items.push({ customId: l.custom_id, body: l.body });
    }
  } catch (err) {
    if (!(err instanceof GatewayError)) throw err;
    const line = /^Line (\d+)/.exec(err.message);
    return { items, errors: [{ code: 'invalid_request', message: err.message, param: null, line: line ? Number(line[1]) : null }] };
  }
  if (items.length === 0) return { items, errors: [{ code: 'empty_file', message: 'The input file holds no requests.', param: null, line: null }] };
  return { items, errors: [] };
}

export async function createBatch(services: Services, config: CompiledConfig, key: KeyInfo, raw: unknown): Promise<BatchRecord> {
  const input = validateBody(createSchema, raw);
  const queue = services.queue;
  if (!queue) throw new GatewayError('service_unavailable', 'Batches are not available in this process.');
  const file = await services.files.get(key.team, input.input_file_id);
  if (!file) throw new GatewayError('not_found', `No file "${input.input_file_id}" for this key's team.`, { param: 'input_file_id' });
  if (file.purpose !== 'batch') throw new GatewayError('invalid_request', `File "${file.id}" was uploaded with purpose "${file.purpose}"; a batch reads files uploaded with purpose "batch".`, { param: 'input_file_id' });
  const content = await services.files.content(key.team, file.id);
  if (!content) throw new GatewayError('not_found', `No file "${input.input_file_id}" for this key's team.`, { param: 'input_file_id' });
  const now = Math.floor(Date.now() / 1000);
  const batch: BatchRecord = {
    id: createBatchId(),
    team: key.team,
    keyId: key.id,
    lane: key.lane,
    endpoint: input.endpoint,
    input_file_id: file.id,
    completion_window: '24h',
    metadata: input.metadata ?? null,
    status: 'validating',
    created_at: now,
    expires_at: now + WINDOW_S,
    in_progress_at: null,
    finalizing_at: null,
    completed_at: null,
    failed_at: null,
    expired_at: null,
    cancelling_at: null,
    cancelled_at: null,
    output_file_id: null,
    error_file_id: null,
    errors: null,
    total: 0,
  };
  const parsed = parseBatchLines(content, input.endpoint, { maxLines: MAX_BATCH_LINES, maxDepth: config.server.max_json_depth });
  const store = await queue.store();
  if (parsed.errors.length > 0) {
    batch.status = 'failed';
    batch.failed_at = now;
    batch.errors = parsed.errors.slice(0, 1_000);
    await store.putBatch(batch);
    return batch;
  }
  batch.status = 'in_progress';
  batch.in_progress_at = now;
  batch.total = parsed.items.length;
  // The batch first: a worker that takes a line finds its batch.
  await store.putBatch(batch);
  const enqueuedAt = Date.now();
  const items: WorkItem[] = parsed.items.map((l, index) => ({ id: `${batch.id}:${index}`, kind: 'batch', owner: batch.id, index, customId: l.customId, keyId: key.id, body: l.body, enqueuedAt }));
  await store.enqueue(items);
  return batch;
}
