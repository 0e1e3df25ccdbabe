// Batch input files (purpose `batch`), as OpenAI's Batch API reads them: one
// JSON request per line,
//   {"custom_id": "...", "method": "POST", "url": "/v1/chat/completions", "body": {...}}
// checked line by line at upload so a bad file is refused at once, naming the
// line, rather than failing a batch later. The batch runner reads lines back
// with the same parser (readBatchInput), so what was accepted is what runs.
import { GatewayError } from '../errors.js';
import { jsonDepth } from '../json-depth.js';

export const BATCH_URLS = ['/v1/chat/completions', '/v1/embeddings', '/v1/responses'] as const;
export type BatchUrl = (typeof BATCH_URLS)[number];

export interface BatchInputLine {
  /** 1-based line number in the file. */
  line: number;
  custom_id: string;
  method: 'POST';
  url: BatchUrl;
  body: Record<string, unknown>;
}

export interface BatchInputLimits {
  maxLines: number;
  /** Nesting a line's JSON may have (server.max_json_depth). */
  maxDepth: number;
}

const MAX_CUSTOM_ID = 512;
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

function bad(line: number, message: string): GatewayError {
  return new GatewayError('invalid_request', `Line ${line} of the file: ${message}`, { param: 'file' });
}

/** Client text named in an error, kept short. */
function quoted(text: string): string {
  return JSON.stringify(text.length > 64 ? `${text.slice(0, 64)}…` : text);
}

/**
 * Each request line of a batch input file, validated; throws a GatewayError
 * `invalid_request` naming the first bad line. Blank lines (a trailing
 * newline, say) are skipped but still counted in line numbers.
 */
export function* readBatchInput(content: Buffer, limits: BatchInputLimits): Generator<BatchInputLine> {
  const seen = new Map<string, number>();
  let start = content[0] === 0xef && content[1] === 0xbb && content[2] === 0xbf ? 3 : 0;
  let lineNo = 0;
  let requests = 0;
  while (start <= content.length) {
    let end = content.indexOf(0x0a, start);
    if (end < 0) end = content.length;
    lineNo++;
    const raw = content.subarray(start, end > start && content[end - 1] === 0x0d ? end - 1 : end);
    start = end + 1;
    let text: string;
    try {
      text = utf8.decode(raw);
    } catch {
      throw bad(lineNo, 'not valid UTF-8.');
    }
    if (text.trim() === '') continue;
    if (++requests > limits.maxLines) {
      throw new GatewayError('invalid_request', `The file has more than ${limits.maxLines} request lines, the most one batch may hold; split it into several files.`, { param: 'file' });
    }
    yield parseLine(text, lineNo, limits, seen);
  }
}

function parseLine(text: string, line: number, limits: BatchInputLimits, seen: Map<string, number>): BatchInputLine {
  if (jsonDepth(text, limits.maxDepth) > limits.maxDepth) throw bad(line, `the JSON is nested deeper than the limit of ${limits.maxDepth} levels.`);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw bad(line, 'not valid JSON. Each line must be one JSON object: {"custom_id": ..., "method": "POST", "url": ..., "body": {...}}.');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw bad(line, 'expected a JSON object with custom_id, method, url and body.');
  const o = value as Record<string, unknown>;
  const customId = o.custom_id;
  if (typeof customId !== 'string' || customId.length === 0) throw bad(line, 'custom_id must be a non-empty string.');
  if (customId.length > MAX_CUSTOM_ID) throw bad(line, `custom_id is longer than ${MAX_CUSTOM_ID} characters.`);
  const first = seen.get(customId);
  if (first !== undefined) throw bad(line, `custom_id ${quoted(customId)} was already used on line ${first}; each custom_id must be unique within the file.`);
  seen.set(customId, line);
  if (o.method !== 'POST') throw bad(line, 'method must be "POST".');
  if (typeof o.url !== 'string' || !(BATCH_URLS as readonly string[]).includes(o.url)) throw bad(line, `url must be one of ${BATCH_URLS.join(', ')}.`);
  const body = o.body;
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw bad(line, 'body must be a JSON object (the request for url).');
  if (typeof (body as Record<string, unknown>).model !== 'string') throw bad(line, 'body.model must be a string naming the model.');
  return { line, custom_id: customId, method: 'POST', url: o.url as BatchUrl, body: body as Record<string, unknown> };
}

/** Validates a whole batch input file; returns how many request lines it holds (at least one). */
export function validateBatchInput(content: Buffer, limits: BatchInputLimits): number {
  let lines = 0;
  for (const _ of readBatchInput(content, limits)) lines++;
  if (lines === 0) throw new GatewayError('invalid_request', 'The file holds no request lines; a batch input file has one JSON request per line.', { param: 'file' });
  return lines;
}
