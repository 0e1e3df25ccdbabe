// What a cache entry holds, and the checks every entry passes before it is
// served. An entry carries the scope and lane it was stored for; a read that
// finds another scope or lane (a key collision, or a bug in key building)
// must never serve it. Anything malformed or truncated is a miss, and the
// caller deletes it.
import type { ChatCompletion, Usage } from '../api/schemas.js';

/** Bump when the layout below changes; it is part of every Redis key. */
export const ENTRY_FORMAT = 1;

interface EntryBase {
  v: typeof ENTRY_FORMAT;
  scope: string;
  lane: string;
  /** The configured model it answered for. */
  model: string;
  /** The deployment that answered, for saved-spend pricing. */
  deployment: string;
  /** ms since the epoch, for `age`. */
  created_at: number;
}

/** One completion, in non-streaming form: streamed answers are assembled into it, and replayed from it. */
export interface ChatEntry extends EntryBase {
  kind: 'chat';
  completion: ChatCompletion & { usage: Usage };
}

/** One input's embedding. */
export interface EmbeddingEntry extends EntryBase {
  kind: 'embedding';
  /** The `model` the upstream reported. */
  upstream_model: string;
  /** This input's share of the upstream's prompt tokens. */
  tokens: number;
  /** The vector as little-endian float64, base64: exact for any number, served as float or base64 (float32). */
  vector: string;
}

export type Decoded<T> = { ok: true; entry: T } | { ok: false; reason: 'corrupt' | 'scope_mismatch' };

export interface Expected {
  scope: string;
  lane: string;
}

function parse(raw: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(raw);
    return value && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

function checkBase(e: Record<string, unknown>, kind: string, expected: Expected): Decoded<never> | undefined {
  if (e.v !== ENTRY_FORMAT || e.kind !== kind || typeof e.scope !== 'string' || typeof e.lane !== 'string') return { ok: false, reason: 'corrupt' };
  if (typeof e.model !== 'string' || typeof e.deployment !== 'string' || typeof e.created_at !== 'number' || !Number.isFinite(e.created_at)) {
    return { ok: false, reason: 'corrupt' };
  }
  if (e.scope !== expected.scope || e.lane !== expected.lane) return { ok: false, reason: 'scope_mismatch' };
  return undefined;
}

const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0;

function validUsage(u: unknown): u is Usage {
  if (!u || typeof u !== 'object') return false;
  const usage = u as Record<string, unknown>;
  return isCount(usage.prompt_tokens) && isCount(usage.completion_tokens) && isCount(usage.total_tokens);
}

/** A complete completion: every choice finished, with a message the replay can turn into chunks. */
export function isCompleteCompletion(c: unknown): c is ChatCompletion & { usage: Usage } {
  if (!c || typeof c !== 'object') return false;
  const completion = c as Record<string, unknown>;
  if (typeof completion.id !== 'string' || typeof completion.model !== 'string' || typeof completion.created !== 'number') return false;
  if (!validUsage(completion.usage)) return false;
  const choices = completion.choices;
  if (!Array.isArray(choices) || choices.length === 0) return false;
  for (const choice of choices as unknown[]) {
    if (!choice || typeof choice !== 'object') return false;
    const ch = choice as Record<string, unknown>;
    if (!isCount(ch.index) || typeof ch.finish_reason !== 'string') return false;
    const m = ch.message as Record<string, unknown> | undefined;
    if (!m || typeof m !== 'object' || m.role !== 'assistant') return false;
    if (m.content !== null && m.content !== undefined && typeof m.content !== 'string') return false;
    if (m.tool_calls !== undefined) {
      if (!Array.isArray(m.tool_calls)) return false;
      for (const t of m.tool_calls as unknown[]) {
        const call = t as { id?: unknown; function?: { name?: unknown; arguments?: unknown } } | null;
        if (!call || typeof call.id !== 'string' || typeof call.function?.name !== 'string' || typeof call.function.arguments !== 'string') return false;
      }
    }
  }
  return true;
}

export function decodeChatEntry(raw: string, expected: Expected): Decoded<ChatEntry> {
  const e = parse(raw);
  if (!e) return { ok: false, reason: 'corrupt' };
  const bad = checkBase(e, 'chat', expected);
  if (bad) return bad;
  if (!isCompleteCompletion(e.completion)) return { ok: false, reason: 'corrupt' };
  return { ok: true, entry: e as unknown as ChatEntry };
}

export function decodeEmbeddingEntry(raw: string, expected: Expected): Decoded<EmbeddingEntry> {
  const e = parse(raw);
  if (!e) return { ok: false, reason: 'corrupt' };
  const bad = checkBase(e, 'embedding', expected);
  if (bad) return bad;
  if (typeof e.upstream_model !== 'string' || !isCount(e.tokens) || typeof e.vector !== 'string' || e.vector.length === 0) return { ok: false, reason: 'corrupt' };
  // 8 bytes per float64: base64 of a multiple of 8 bytes has a length that is a multiple of 4 and no stray characters.
  if (e.vector.length % 4 !== 0 || !/^[A-Za-z0-9+/]+={0,2}$/.test(e.vector) || Buffer.byteLength(e.vector, 'base64') % 8 !== 0) return { ok: false, reason: 'corrupt' };
  return { ok: true, entry: e as unknown as EmbeddingEntry };
}

export function encodeVector(vector: ArrayLike<number>): string {
  const f64 = Float64Array.from(vector);
  return Buffer.from(f64.buffer, f64.byteOffset, f64.byteLength).toString('base64');
}

export function decodeVector(base64: string): Float64Array {
  const bytes = Buffer.from(base64, 'base64');
  // Copy into an aligned buffer: a Buffer's offset need not be a multiple of 8.
  const out = new Float64Array(bytes.byteLength / 8);
  new Uint8Array(out.buffer).set(bytes);
  return out;
}

/** OpenAI's base64 encoding: little-endian float32. */
export function toBase64Float32(vector: ArrayLike<number>): string {
  const f32 = Float32Array.from(vector);
  return Buffer.from(f32.buffer, f32.byteOffset, f32.byteLength).toString('base64');
}

export function fromBase64Float32(base64: string): Float32Array {
  const bytes = Buffer.from(base64, 'base64');
  const out = new Float32Array(Math.floor(bytes.byteLength / 4));
  new Uint8Array(out.buffer).set(bytes.subarray(0, out.byteLength));
  return out;
}
