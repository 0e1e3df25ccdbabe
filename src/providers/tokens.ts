// Token counting with tiktoken, loaded only the first time something needs a
// count (an upstream that reports no usage, a budget or a routing rule).
// tiktoken takes about 1.3 µs a token on V8's baseline WebAssembly compiler,
// which the shipped Node flags keep it on (about 0.9 µs optimised): a 100 KB
// prompt is some 30 ms, which on the event loop would stall every other
// request meanwhile. Texts that long are counted on a worker thread; short
// ones (most) right here, where a round trip to the worker would cost more
// than the count.
//
// A routing rule only asks whether a prompt reaches a number of tokens, so
// a count can stop once it has its answer: a long text is counted piece by
// piece, cut where a line starts with a letter or digit. No pretoken of
// tiktoken's split pattern spans such a cut (a newline run ends there, and
// a word or number never starts before a newline), so the pieces' counts add
// up to exactly the whole text's: a bounded count is exact below its bound.
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import type { ChatMessage, ChatRequest, EmbeddingsRequest } from '../api/schemas.js';

/** Texts of at least this many UTF-16 units in one count go to the worker. */
export const OFFLOAD_CHARS = 32 * 1024;

// encode_ordinary: text is counted as text. `encode` throws on special-token
// text such as "<|endoftext|>", which any prompt may contain.
type Encoder = { encode_ordinary(text: string): Uint32Array };
let encoder: Encoder | undefined;
let loading: Promise<Encoder> | undefined;

async function loadEncoder(): Promise<Encoder> {
  if (encoder) return encoder;
  loading ??= import('tiktoken').then((m) => {
    encoder = m.get_encoding('o200k_base');
    return encoder;
  });
  return loading;
}

/**
 * The tokens of `texts`, counted until they reach `limit`: exact below it,
 * some number at least `limit` otherwise (Infinity counts everything, each
 * text whole). Runs in process and, as its source text, on the worker: it
 * may use nothing from outside its body.
 */
function countUpTo(encoder: Encoder, texts: readonly string[], limit: number): number {
  // ~1,000 tokens, a few ms: how far a count may run past its limit.
  const piece = 4096;
  const cut = /\n(?=[\p{L}\p{N}])/gu;
  let tokens = 0;
  for (const text of texts) {
    let start = 0;
    while (start < text.length && tokens < limit) {
      let end = text.length;
      if (limit !== Infinity && end - start > 2 * piece) {
        cut.lastIndex = start + piece;
        const found = cut.exec(text);
        if (found) end = found.index + 1;
      }
      tokens += encoder.encode_ordinary(start === 0 && end === text.length ? text : text.slice(start, end)).length;
      start = end;
    }
    if (tokens >= limit) break;
  }
  return tokens;
}

// Plain CommonJS, so the worker starts the same from the TypeScript sources
// (tsx registered in the main thread only) and from dist/.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const encoder = require(workerData.tiktoken).get_encoding('o200k_base');
const countUpTo = ${countUpTo.toString()};
parentPort.on('message', ({ id, texts, limit }) => {
  try {
    parentPort.postMessage({ id, tokens: countUpTo(encoder, texts, limit) });
  } catch (err) {
    parentPort.postMessage({ id, error: String(err) });
  }
});
`;

interface Pending {
  resolve(tokens: number): void;
  reject(err: Error): void;
}

interface CountingWorker {
  thread: Worker;
  /** Counts sent to this worker and not answered yet. */
  pending: Map<number, Pending>;
}

let current: CountingWorker | undefined;
/** Workers that failed or died: after a few, counts stay in process rather than respawn one per count. */
let workerFailures = 0;
const MAX_WORKER_FAILURES = 3;
let nextId = 0;

let tiktokenPath: string | undefined;

function startWorker(): CountingWorker {
  tiktokenPath ??= createRequire(import.meta.url).resolve('tiktoken');
  const thread = new Worker(WORKER_SOURCE, { eval: true, workerData: { tiktoken: tiktokenPath } });
  const self: CountingWorker = { thread, pending: new Map() };
  // Held open only while a count is in flight: an idle worker never keeps the process alive.
  thread.unref();
  thread.on('message', (m: { id: number; tokens?: number; error?: string }) => {
    const p = self.pending.get(m.id);
    if (!p) return;
    self.pending.delete(m.id);
    if (self.pending.size === 0) thread.unref();
    if (m.error === undefined) p.resolve(m.tokens!);
    else p.reject(new Error(m.error));
  });
  // 'error' and then 'exit' both come for a worker that crashed: the first one counts.
  const fail = (err: Error) => {
    if (current === self) {
      current = undefined;
      workerFailures++;
    }
    for (const p of self.pending.values()) p.reject(err);
    self.pending.clear();
  };
  thread.on('error', fail);
  thread.on('exit', (code) => fail(new Error(`the token counting worker exited (${code})`)));
  return self;
}

function countOnWorker(texts: string[], limit: number): Promise<number> {
  if (!current) {
    try {
      current = startWorker();
    } catch (err) {
      // No thread could be made (or tiktoken not found): counted like a worker that died.
      workerFailures++;
      throw err;
    }
  }
  const w = current;
  const id = nextId++;
  return new Promise<number>((resolve, reject) => {
    w.thread.postMessage({ id, texts, limit });
    if (w.pending.size === 0) w.thread.ref();
    w.pending.set(id, { resolve, reject });
  });
}

export interface CountOptions {
  /**
   * Count on the worker thread unless this thread's encoder is loaded already:
   * for counts off the client's path, where the first load (about 0.7 s of
   * blocking work) must not stall every other request.
   */
  offThread?: boolean;
}

async function countTexts(texts: string[], limit: number, options: CountOptions = {}): Promise<number> {
  let chars = 0;
  for (const t of texts) chars += t.length;
  const offload = chars >= OFFLOAD_CHARS || (options.offThread === true && !encoder);
  if (offload && workerFailures < MAX_WORKER_FAILURES) {
    try {
      return await countOnWorker(texts, limit);
    } catch {
      // No worker (it failed to start or died): the count is still owed.
    }
  }
  return countUpTo(await loadEncoder(), texts, limit);
}

export async function countTextTokens(text: string, options: CountOptions = {}): Promise<number> {
  if (text.length === 0) return 0;
  return countTexts([text], Infinity, options);
}

/**
 * Prompt tokens of a chat request, with OpenAI's per-message overhead.
 * With a `limit`, counting stops once the total reaches it: the result is
 * exact when below the limit, and otherwise only says "at least the limit".
 */
export async function countMessageTokens(messages: readonly ChatMessage[], limit = Infinity, options: CountOptions = {}): Promise<number> {
  let overhead = 3; // every reply is primed with <|start|>assistant<|message|>
  const texts: string[] = [];
  for (const m of messages) {
    overhead += 3;
    texts.push(m.role);
    if (typeof m.content === 'string') texts.push(m.content);
    else if (Array.isArray(m.content)) {
      for (const part of m.content) if (part.type === 'text' && typeof part.text === 'string') texts.push(part.text);
    }
    if (m.name) {
      overhead += 1;
      texts.push(m.name);
    }
    for (const call of m.tool_calls ?? []) {
      overhead += 3;
      texts.push(call.function.name, call.function.arguments);
    }
  }
  return overhead + (await countTexts(texts, limit - overhead, options));
}

/**
 * An upper bound on countMessageTokens, without tokenizing: a token is at
 * least one UTF-8 byte, so a text has no more tokens than bytes. Tools, which
 * the count leaves out, are included, and an image part counts 1,024. Budgets
 * reserve with it; a routing rule is decided by it alone when it settles the
 * rule either way.
 */
export function promptTokenBound(chat: ChatRequest): number {
  let n = 3;
  for (const m of chat.messages) {
    n += 3 + Buffer.byteLength(m.role);
    if (typeof m.content === 'string') n += Buffer.byteLength(m.content);
    else if (Array.isArray(m.content)) for (const p of m.content) n += p.type === 'text' && typeof p.text === 'string' ? Buffer.byteLength(p.text) : 1024;
    for (const c of m.tool_calls ?? []) n += Buffer.byteLength(c.function.arguments) + Buffer.byteLength(c.function.name) + 3;
    if (m.name) n += Buffer.byteLength(m.name) + 1;
  }
  for (const t of chat.tools ?? []) n += Buffer.byteLength(JSON.stringify(t.function));
  return n;
}

/**
 * A request whose prompt is counted at most once, keeping the count on
 * itself. The request context is one; it is named by its shape so that the
 * tokenizer imports nothing from the pipeline.
 */
export interface PromptCountHolder {
  readonly chat?: ChatRequest;
  promptTokens?: number;
}

/**
 * Prompt tokens, counted once per request and only when something needs
 * them. With a `limit`, counting may stop there: a result at or over the
 * limit only says "at least the limit", and is not kept as the count.
 */
export async function promptTokens(request: PromptCountHolder, limit = Infinity): Promise<number> {
  if (request.promptTokens !== undefined) return request.promptTokens;
  const tokens = request.chat ? await countMessageTokens(request.chat.messages, limit) : 0;
  if (tokens < limit) request.promptTokens = tokens;
  return tokens;
}

/**
 * What a budget reserves for an embeddings input, without tokenizing: half a
 * text's UTF-8 bytes, and token ids as given. An estimate, not a bound: the
 * reservation is replaced by the tokens the provider reports when it settles.
 */
export function embeddingTokenEstimate(input: EmbeddingsRequest['input'] | undefined): number {
  if (typeof input === 'string') return Math.ceil(Buffer.byteLength(input) / 2);
  if (!Array.isArray(input)) return 0;
  let n = 0;
  for (const item of input) n += typeof item === 'string' ? Math.ceil(Buffer.byteLength(item) / 2) : Array.isArray(item) ? item.length : 1;
  return n;
}
