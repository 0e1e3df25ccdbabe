// Token counting with tiktoken, loaded only the first time something needs a
// count (an upstream that reports no usage, a budget or a routing rule).
// tiktoken takes about 1.3 µs a token on V8's baseline WebAssembly compiler,
// which the shipped Node flags keep it on (about 0.9 µs optimised): a 100 KB
// prompt is some 30 ms, which on the event loop would stall every other
// request meanwhile. Texts that long are counted on a worker thread; short
// ones (most) right here, where a round trip to the worker would cost more
// than the count.
//
// The count, and where a long text is cut so that counting can stop at a
// bound, live in token-count.ts (shared with the worker).
import { Piscina } from 'piscina';
import type { ChatMessage, ChatRequest, EmbeddingsRequest } from '../api/schemas.js';
import { countUpTo, ENCODING, type Encoder } from './token-count.js';
import type { CountAnswer, CountTask } from './token-worker.js';

/** Texts of at least this many UTF-16 units in one count go to the worker. */
export const OFFLOAD_CHARS = 32 * 1024;

let encoder: Encoder | undefined;
let loading: Promise<Encoder> | undefined;

async function loadEncoder(): Promise<Encoder> {
  if (encoder) return encoder;
  loading ??= import('tiktoken').then((m) => {
    encoder = m.get_encoding(ENCODING);
    return encoder;
  });
  return loading;
}

// One thread, started on the first long count and kept (idle, it keeps no
// process alive: piscina unrefs it); counts wait their turn in the pool's queue.
let pool: Piscina<CountTask, CountAnswer> | undefined;
/** Pools whose worker failed or died: after a few, counts stay in process rather than respawn one per count. */
let workerFailures = 0;
const MAX_WORKER_FAILURES = 3;

/**
 * The worker's module and, when running from the TypeScript sources, how it
 * loads them: bin/lanegate.mjs registers tsx in the main thread only, so the
 * worker is given it too unless the process was started with it (tests).
 */
function workerOptions(): { filename: string; execArgv?: string[] } {
  const fromSources = import.meta.url.endsWith('.ts');
  const filename = new URL(`./token-worker.${fromSources ? 'ts' : 'js'}`, import.meta.url).href;
  if (!fromSources || process.execArgv.some((a) => a.includes('tsx'))) return { filename };
  // Not process.execArgv: a worker refuses V8 flags (npm start's), which apply to it anyway.
  return { filename, execArgv: ['--import', import.meta.resolve('tsx')] };
}

function dropPool(failed: Piscina<CountTask, CountAnswer>): void {
  if (pool !== failed) return; // another count saw the same failure first
  pool = undefined;
  workerFailures++;
  void failed.destroy().catch(() => {});
}

function startPool(): Piscina<CountTask, CountAnswer> {
  const started = new Piscina<CountTask, CountAnswer>({ ...workerOptions(), minThreads: 1, maxThreads: 1 });
  // A worker that dies with no count in flight: the next count starts a fresh pool.
  started.on('error', () => dropPool(started));
  return started;
}

async function countOnWorker(texts: string[], limit: number): Promise<number> {
  if (!pool) {
    try {
      pool = startPool();
    } catch (err) {
      // No thread could be made: counted like a worker that died.
      workerFailures++;
      throw err;
    }
  }
  const running = pool;
  let answer: CountAnswer;
  try {
    answer = await running.run({ texts, limit });
  } catch (err) {
    // The worker failed to start (tiktoken not found) or died mid-count.
    dropPool(running);
    throw err;
  }
  if ('error' in answer) throw new Error(answer.error);
  return answer.tokens;
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
