// POST /v1/batches: the request validated, the input file read (the key's
// team's only) and checked line by line against the batch's endpoint, then
// the batch stored and its lines queued. A file with bad lines makes a
// `failed` batch whose errors name each line, as OpenAI's does; nothing of
// it is queued.
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import type { KeyInfo } from '../config/compile.js';
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

/** Each line: `{custom_id, method: "POST", url: <the batch's endpoint>, body: {...}}`, custom_id unique. */
export function parseBatchLines(content: string, endpoint: string): ParsedLines {
  const items: ParsedLines['items'] = [];
  const errors: BatchError[] = [];
  const seen = new Set<string>();
  const lines = content.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const text = lines[i]!.trim();
    if (!text) continue;
    const line = i + 1;
    const fail = (code: string, message: string, param: string | null = null) => void errors.push({ code, message, param, line });
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      fail('invalid_json_line', `Line ${line} is not valid JSON.`);
      continue;
    }
    const v = value as Record<string, unknown>;
    if (typeof v !== 'object' || v === null || Array.isArray(v)) fail('invalid_request', `Line ${line} must be a JSON object.`);
    else if (typeof v.custom_id !== 'string' || !v.custom_id) fail('missing_required_parameter', `Line ${line} has no custom_id.`, 'custom_id');
    else if (seen.has(v.custom_id)) fail('duplicate_custom_id', `Line ${line} repeats custom_id "${v.custom_id.slice(0, 64)}"; each line needs its own.`, 'custom_id');
    else if (v.method !== 'POST') fail('invalid_method', `Line ${line}: method must be "POST".`, 'method');
    else if (v.url !== endpoint) fail('mismatched_endpoint', `Line ${line}: url must be the batch's endpoint, ${endpoint}.`, 'url');
    else if (typeof v.body !== 'object' || v.body === null || Array.isArray(v.body)) fail('invalid_request', `Line ${line}: body must be a JSON object.`, 'body');
    else {
      seen.add(v.custom_id);
      items.push({ customId: v.custom_id, body: v.body as Record<string, unknown> });
    }
  }
  if (items.length + errors.length > MAX_BATCH_LINES) errors.unshift({ code: 'too_many_requests', message: `A batch holds at most ${MAX_BATCH_LINES} lines.`, param: null, line: null });
  if (items.length === 0 && errors.length === 0) errors.push({ code: 'empty_file', message: 'The input file holds no requests.', param: null, line: null });
  return { items, errors };
}

export async function createBatch(services: Services, key: KeyInfo, raw: unknown): Promise<BatchRecord> {
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
  const parsed = parseBatchLines(content.toString('utf8'), input.endpoint);
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
