// Cache keys. A key is the sha256 of a canonical form of everything that can
// change an answer, so no prompt, tool argument or embedding input is ever
// stored in a key in clear; the scope (who may share the entry) is hashed in
// and is also a key component of its own, for purges.
import { createHash } from 'node:crypto';
import type { ChatRequest, EmbeddingsRequest } from '../api/schemas.js';
import type { KeyInfo } from '../config/compile.js';
import type { CompiledLane } from '../policy/compile.js';
import type { Deployment } from '../providers/types.js';
import { sha256Hex } from '../sha256.js';

/** Bump when what goes into a key changes, so old entries are never matched. */
export const KEY_FORMAT = 1;

/**
 * Request fields that never change the answer. Everything else counts,
 * unknown fields included: a parameter the gateway does not know may well
 * change the answer, and a needless miss is cheaper than a wrong hit.
 * `user` and `safety_identifier` name the app's end user for the provider's
 * abuse monitoring; the answer does not depend on them, and who may share an
 * entry is decided by the lane's scope, not by them.
 */
const CHAT_IGNORED = new Set(['model', 'stream', 'stream_options', 'user', 'safety_identifier', 'metadata', 'store', 'service_tier', 'prompt_cache_key']);
const EMBEDDINGS_IGNORED = new Set(['model', 'input', 'encoding_format', 'user']);
/** The same for a request in an upstream's own API (ctx.native): Anthropic's `metadata` holds only the end user's id. */
const NATIVE_IGNORED = new Set(['model', 'stream', 'metadata']);

/** JSON with object keys sorted at every depth; `undefined` members are left out, as JSON.stringify does. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) {
    let out = '[';
    for (let i = 0; i < value.length; i++) {
      const v: unknown = value[i];
      out += (i > 0 ? ',' : '') + (v === undefined ? 'null' : canonicalJson(v));
    }
    return `${out}]`;
  }
  return canonicalObject(value as Record<string, unknown>, undefined);
}

/**
 * An object's canonical JSON; members named in `skip`, and (with a skip set)
 * null ones, left out. One pass over the sorted keys, no copy of the object.
 */
function canonicalObject(obj: Record<string, unknown>, skip: ReadonlySet<string> | undefined): string {
  let out = '{';
  for (const k of Object.keys(obj).sort()) {
    const v = obj[k];
    if (v === undefined || typeof v === 'function') continue;
    // null means "the default", the same as leaving the field out.
    if (skip && (v === null || skip.has(k))) continue;
    out += (out.length > 1 ? ',' : '') + JSON.stringify(k) + ':' + canonicalJson(v);
  }
  return `${out}}`;
}

/** Who may share an entry, from the lane's `cache` rule; undefined when the lane forbids caching. */
export function cacheScope(lane: CompiledLane, key: KeyInfo): string | undefined {
  switch (lane.cache) {
    case 'shared':
      return 'shared';
    case 'team':
      return `team:${key.team}`;
    case 'key':
      return `key:${key.id}`;
    case 'off':
      return undefined;
  }
}

/**
 * What a key is built from besides the request itself; a request context has
 * all of it. Named field by field rather than as the context so that the
 * cache's stores (which share KEY_FORMAT) never import the context.
 */
export interface KeyFacts {
  readonly lane?: string;
  readonly model?: { readonly name: string };
  readonly candidates: readonly Deployment[];
  readonly prompt?: unknown;
  /**
   * The request in the app's own API when an upstream of that API may get it
   * (an Anthropic Messages request): what it carries that the chat form does
   * not (thinking, cache_control markers, top_k) changes the answer or its
   * price, so it is part of the key.
   */
  readonly native?: { readonly body: Record<string, unknown> };
}

const fingerprints = new WeakMap<Deployment, string>();

/**
 * The deployments that may answer, with their upstream model and default
 * params: a config change to any of them (or a lane that allows other ones)
 * gives new keys. Sorted, because balancing reorders them per request.
 */
function targets(candidates: readonly Deployment[]): string {
  const out: string[] = [];
  for (const d of candidates) {
    let f = fingerprints.get(d);
    if (f === undefined) {
      f = `${d.id}|${d.model}|${canonicalJson(d.params)}`;
      fingerprints.set(d, f);
    }
    out.push(f);
  }
  return out.sort().join('\n');
}

/**
 * The prompt template the request was rendered from, if the prompts stage
 * recorded one. Read defensively: that stage may not exist in this build.
 */
function promptRef(ctx: KeyFacts): { name: string; version: string } | null {
  const prompt = ctx.prompt;
  if (!prompt || typeof prompt !== 'object') return null;
  const p = prompt as Record<string, unknown>;
  const name = p.name ?? p.template ?? p.id;
  const version = p.version ?? p.hash ?? p.pin;
  if (name === undefined && version === undefined) return null;
  return { name: String(name ?? ''), version: String(version ?? '') };
}

/**
 * The canonical JSON of the key's content, an object with these members, in
 * sorted order as canonicalJson writes them:
 *   v, endpoint, scope, lane (answers made under one lane's rules stay in
 *   that lane), model, targets, prompt, the request without the fields that
 *   never change the answer, (embeddings) dimensions, and (a request an
 *   upstream may get in the app's own API) that native request.
 * Written member by member: no intermediate objects on the hot path.
 */
function keyJson(ctx: KeyFacts, scope: string, endpoint: 'chat' | 'embeddings', request: object, ignored: ReadonlySet<string>, dimensions?: number | null): string {
  const prompt = promptRef(ctx);
  return (
    (dimensions === undefined ? '{' : `{"dimensions":${JSON.stringify(dimensions)},`) +
    `"endpoint":${JSON.stringify(endpoint)}` +
    `,"lane":${JSON.stringify(ctx.lane ?? '')}` +
    `,"model":${JSON.stringify(ctx.model!.name)}` +
    (ctx.native ? `,"native":${canonicalObject(ctx.native.body, NATIVE_IGNORED)}` : '') +
    `,"prompt":${prompt ? canonicalJson(prompt) : 'null'}` +
    `,"request":${canonicalObject(request as Record<string, unknown>, ignored)}` +
    `,"scope":${JSON.stringify(scope)}` +
    `,"targets":${JSON.stringify(targets(ctx.candidates))}` +
    `,"v":${KEY_FORMAT}}`
  );
}

/** The sha256 (hex) of a chat request's answer-changing content, in its scope. */
export function chatKeyHash(ctx: KeyFacts, chat: ChatRequest, scope: string): string {
  return sha256Hex(keyJson(ctx, scope, 'chat', chat, CHAT_IGNORED));
}

/** What every item of one embeddings request shares; each item's key is hashed from it and the item. */
export function embeddingsKeyPrefix(ctx: KeyFacts, request: EmbeddingsRequest, scope: string): string {
  return keyJson(ctx, scope, 'embeddings', request, EMBEDDINGS_IGNORED, request.dimensions ?? null);
}

export function embeddingItemHash(prefix: string, item: string | readonly number[]): string {
  return createHash('sha256').update(prefix).update('\n').update(JSON.stringify(item)).digest('hex');
}
