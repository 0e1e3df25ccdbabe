// What a record keeps of the request and response bodies, as the lane's
// `audit.bodies` allows:
//   full      the request as the app sent it, the answer as the app got it
//   redacted  the request as the provider saw it (placeholders), the answer
//             with the lane's detectors run over it again and restored values
//             masked, so nothing the lane redacts reaches the trail
//   hash      sha256 of each only: no body text at all
// Every mode keeps both hashes, so a body produced later can be checked
// against the trail. A request a detector blocked keeps hashes only, whatever
// the lane says: blocked data must not be kept anywhere.
import type { ChatCompletion, ChatRequest, EmbeddingsRequest, EmbeddingsResponse } from '../api/schemas.js';
import type { CompiledLane, LaneDetector } from '../policy/compile.js';
import { chatSlots, embeddingSlots, redactSlot, scanSlots, type TextSlot } from '../policy/scan.js';
import { sha256Hex } from '../sha256.js';
import { rawJsonOf } from './raw-json.js';
import type { AuditBodies, AuditToolCall, BodyMode } from './schema.js';

export interface BodyInputs {
  mode: BodyMode;
  endpoint: 'chat' | 'embeddings';
  lane: CompiledLane | undefined;
  /** placeholder -> original value, when the lane restores redactions. */
  restore: ReadonlyMap<string, string> | undefined;
  /** The request body bytes as received. */
  raw: Buffer | undefined;
  /** The request as the provider saw it (after redaction, stripped tools, safe mode). */
  seen: ChatRequest | EmbeddingsRequest | undefined;
  /** The answer as the app got it: a chat.completion (streams assembled) or an embeddings list. */
  response: unknown;
  /** `response` as the JSON text the app got, when the gateway already has it. */
  responseText?: string | undefined;
  /** A detector blocked the request. */
  blocked: boolean;
  /** The raw body parsed as JSON (the request got past parsing), so it may be kept as it is. */
  parsed: boolean;
}

export function recordBodies(input: BodyInputs): { bodies: AuditBodies; called: AuditToolCall[] } {
  const mode: BodyMode = input.blocked ? 'hash' : input.mode;
  const requestSha = input.raw ? sha256Hex(input.raw) : null;
  const chat = input.endpoint === 'chat' ? (input.response as ChatCompletion | undefined) : undefined;
  const embeddings = input.endpoint === 'embeddings' ? (input.response as EmbeddingsResponse | undefined) : undefined;
  // Embedding vectors are derived data, large and useless to a reviewer: neither kept nor hashed.
  const responseText = chat ? (input.responseText ?? JSON.stringify(chat)) : undefined;
  const responseSha = responseText !== undefined ? sha256Hex(responseText) : null;

  let request: unknown = null;
  let response: unknown = null;
  let masker: Masker | undefined;
  if (mode === 'full') {
    // Both go into the line as the bytes they were, never parsed and serialized again.
    request = input.raw ? ((input.parsed && rawJsonOf(input.raw.toString('utf8'))) || parseRaw(input.raw)) : (input.seen ?? null);
    response = responseText !== undefined ? (rawJsonOf(responseText) ?? chat) : embeddings ? summarizeEmbeddings(embeddings) : null;
  } else if (mode === 'redacted') {
    masker = createMasker(input.lane, input.restore);
    request = input.seen ? masker.request(input.seen, input.endpoint) : null;
    response = chat ? masker.completion(chat) : embeddings ? summarizeEmbeddings(embeddings) : null;
  }

  const called: AuditToolCall[] = [];
  for (const choice of chat?.choices ?? []) {
    for (const call of choice.message?.tool_calls ?? []) {
      const args = call.function.arguments;
      called.push({
        id: call.id,
        name: call.function.name,
        arguments: mode === 'full' ? args : mode === 'redacted' ? masker!.text(args) : null,
        arguments_sha256: sha256Hex(args),
      });
    }
  }
  return { bodies: { mode, request, response, request_sha256: requestSha, response_sha256: responseSha }, called };
}

function parseRaw(raw: Buffer): unknown {
  try {
    return JSON.parse(raw.toString('utf8'));
  } catch {
    // Not JSON (the request was refused for it): nothing readable to keep.
    return null;
  }
}

function summarizeEmbeddings(r: EmbeddingsResponse): unknown {
  return {
    object: r.object,
    model: r.model,
    data: r.data.map((d) => ({ index: d.index, dimensions: typeof d.embedding === 'string' ? null : d.embedding.length })),
    usage: r.usage,
  };
}

interface Masker {
  request(seen: ChatRequest | EmbeddingsRequest, endpoint: 'chat' | 'embeddings'): unknown;
  completion(c: ChatCompletion): unknown;
  text(t: string): string;
}

// Every detector of the lane masks in the trail, whatever it did to the
// request: `block` and `escalate` matches never flowed on, and `allow`
// is about what may reach a provider, not what the trail keeps.
const maskingDetectors = new WeakMap<CompiledLane, LaneDetector[]>();

function detectorsFor(lane: CompiledLane | undefined): LaneDetector[] {
  if (!lane) return [];
  let list = maskingDetectors.get(lane);
  if (!list) maskingDetectors.set(lane, (list = lane.detectors.map((d) => ({ detector: d.detector, action: 'redact' as const }))));
  return list;
}

function createMasker(lane: CompiledLane | undefined, restore: ReadonlyMap<string, string> | undefined): Masker {
  const detectors = detectorsFor(lane);
  // value -> placeholder, seeded with the request's own, so a value restored
  // into the answer is masked with the placeholder the provider saw.
  const placeholders = new Map<string, string>();
  const counters = new Map<string, number>();
  if (restore) {
    for (const [placeholder, value] of restore) {
      placeholders.set(value, placeholder);
      const m = /^\[([A-Z0-9_]+)_(\d+)\]$/.exec(placeholder);
      if (m) counters.set(m[1]!.toLowerCase(), Math.max(counters.get(m[1]!.toLowerCase()) ?? 0, Number(m[2])));
    }
  }
  const restored = restore ? [...restore.values()].filter((v) => v.length > 0).sort((a, b) => b.length - a.length) : [];

  const maskSlots = (slots: TextSlot[]) => {
    for (const slot of slots) {
      for (const value of restored) if (slot.text.includes(value)) slot.set((slot.text = slot.text.split(value).join(placeholders.get(value)!)));
    }
    for (const found of scanSlots(slots, detectors)) redactSlot(found.slot, found.findings, placeholders, counters);
  };
  const text = (t: string): string => {
    const slot: TextSlot = { param: '', text: t, set: (v) => (slot.text = v) };
    maskSlots([slot]);
    return slot.text;
  };

  return {
    text,
    request(seen, endpoint) {
      const copy = structuredClone(seen);
      maskSlots(endpoint === 'chat' ? chatSlots(copy as ChatRequest) : embeddingSlots(copy as EmbeddingsRequest));
      return copy;
    },
    completion(c) {
      const copy = structuredClone(c);
      const slots: TextSlot[] = [];
      for (const choice of copy.choices) {
        const m = choice.message;
        if (typeof m.content === 'string') slots.push({ param: '', text: m.content, set: (v) => (m.content = v) });
        if (typeof m.refusal === 'string') slots.push({ param: '', text: m.refusal, set: (v) => (m.refusal = v) });
        for (const call of m.tool_calls ?? []) slots.push({ param: '', text: call.function.arguments, set: (v) => (call.function.arguments = v) });
      }
      maskSlots(slots);
      return copy;
    },
  };
}
