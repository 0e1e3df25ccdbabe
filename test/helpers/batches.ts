// Batch test helpers: input lines, uploading them, waiting for a batch to end
// and reading its output lines.
import { toFile, type default as OpenAI } from 'openai';
import type { Batch } from 'openai/resources/batches';

export interface InputLine {
  custom_id: string;
  method: 'POST';
  url: string;
  body: Record<string, unknown>;
}

export interface OutputLine {
  id: string;
  custom_id: string;
  response: { status_code: number; request_id: string; body: unknown } | null;
  error: { code: string; message: string } | null;
}

/** `tag` keeps one test's prompts apart from another's (the response cache would answer repeats). */
export function chatLines(n: number, model: string, tag = ''): InputLine[] {
  return Array.from({ length: n }, (_, i) => ({ custom_id: `line-${i}`, method: 'POST', url: '/v1/chat/completions', body: { model, messages: [{ role: 'user', content: `${tag}line ${i}` }], max_tokens: 16 } }));
}

export function jsonl(lines: InputLine[]): Buffer {
  return Buffer.from(lines.map((l) => JSON.stringify(l)).join('\n') + '\n');
}

/** Uploads the input file through the Files API (purpose batch). */
export async function uploadBatchInput(client: OpenAI, lines: InputLine[]): Promise<{ id: string }> {
  return client.files.create({ file: await toFile(jsonl(lines), 'input.jsonl'), purpose: 'batch' });
}

/** An output or error file's lines, read through the Files API. */
export async function outputLines(client: OpenAI, fileId: string): Promise<OutputLine[]> {
  const text = await (await client.files.content(fileId)).text();
  return text.split('\n').filter(Boolean).map((l) => JSON.parse(l) as OutputLine);
}

const FINAL = new Set(['completed', 'failed', 'expired', 'cancelled']);

/** Polls until the batch is final (or throws after `timeoutMs`). */
export async function waitForBatch(client: OpenAI, id: string, timeoutMs = 30_000): Promise<Batch> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const batch = await client.batches.retrieve(id);
    if (FINAL.has(batch.status)) return batch;
    if (Date.now() > until) throw new Error(`batch ${id} still ${batch.status} after ${timeoutMs} ms: ${JSON.stringify(batch.request_counts)}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
