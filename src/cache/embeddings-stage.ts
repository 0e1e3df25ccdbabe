// Pipeline stages of the embeddings cache, per input: `lookupEmbeddingsCache`
// (after routing, before limits) answers when every input is cached and
// otherwise sends only the misses upstream; `completeEmbeddings` (a reply
// stage) puts the answer back together in the original order; and
// `storeEmbeddings` (an after stage) stores the new vectors. What they share
// about the request is ctx.embeddingsCache.
import type { Embedding, EmbeddingsRequest, EmbeddingsResponse } from '../api/schemas.js';
import { formatUsd } from '../budget/pricing.js';
import { GatewayError } from '../errors.js';
import type { Reply, RequestContext } from '../pipeline/context.js';
import type { JsonReply } from '../pipeline/stage.js';
import { decideCacheUse, reportOutcome } from './decide.js';
import { decodeEmbeddingEntry, decodeVector, encodeVector, ENTRY_FORMAT, fromBase64Float32, toBase64Float32, type EmbeddingEntry } from './entry.js';
import { embeddingItemHash, embeddingsKeyPrefix } from './keys.js';
import { cacheLabels, recordSavings } from './savings.js';
import type { EmbeddingItem } from './pending.js';
import type { EntryKey } from './store.js';

type Item = EmbeddingItem;

function inputItems(input: EmbeddingsRequest['input']): Item[] {
  if (typeof input === 'string') return [input];
  if (input.length > 0 && typeof input[0] === 'number') return [input as number[]];
  return input as Item[];
}

/** Pipeline stage: answers from the cache when every input hits; otherwise leaves only the misses in the request. */
export async function lookupEmbeddingsCache(ctx: RequestContext): Promise<Reply | void> {
  const use = decideCacheUse(ctx);
  if (use === undefined || use === 'bypass') return;
  const { cache, settings, rule, scope, scopeKind } = use;
  const request = ctx.embeddings!;
  const items = inputItems(request.input);
  const prefix = embeddingsKeyPrefix(ctx, request, scope);
  const model = ctx.model!.name;
  const keys = items.map((item): EntryKey => ({ kind: 'embedding', scope, model, hash: embeddingItemHash(prefix, item) }));
  const expected = { scope, lane: ctx.lane ?? '' };

  const hits = new Map<number, EmbeddingEntry>();
  if (use.mode === 'use') {
    const raws = await cache.store.getMany(keys);
    raws.forEach((raw, i) => {
      if (raw === undefined) return;
      const decoded = decodeEmbeddingEntry(raw, expected);
      if (decoded.ok) hits.set(i, decoded.entry);
      else cache.discard(keys[i]!, decoded.reason);
    });
  }
  const { route, lane } = cacheLabels(ctx);
  if (hits.size > 0) cache.metrics.embeddingItems.labels(route, lane, 'hit').inc(hits.size);
  if (hits.size < items.length) cache.metrics.embeddingItems.labels(route, lane, 'miss').inc(items.length - hits.size);
  const itemCounts = { hits: hits.size, total: items.length };
  const key = items.length === 1 ? { key: keys[0]!.hash.slice(0, 12) } : {};
  const encoding = request.encoding_format ?? 'float';

  if (hits.size === items.length) {
    const entries = items.map((_, i) => hits.get(i)!);
    const age = Math.max(0, ...entries.map((e) => Math.floor((Date.now() - e.created_at) / 1000)));
    reportOutcome(ctx, cache, { status: 'hit', scope: scopeKind, ...key, age, ...(use.reason ? { reason: use.reason } : {}), items: itemCounts });
    const tokens = entries.reduce((n, e) => n + e.tokens, 0);
    ctx.usage = { prompt_tokens: tokens, completion_tokens: 0, total_tokens: tokens };
    ctx.cost = { nano: 0, usd: 0, priced: true };
    ctx.responseHeaders['x-gateway-cost-usd'] = formatUsd(0);
    recordSavings(cache, ctx, entries[0]!.deployment, { prompt_tokens: tokens, completion_tokens: 0 });
    const body: EmbeddingsResponse = {
      object: 'list',
      data: entries.map((e, index) => ({ object: 'embedding', index, embedding: encode(decodeVector(e.vector), encoding) })),
      model: entries[0]!.upstream_model,
      usage: { prompt_tokens: tokens, total_tokens: tokens },
    };
    ctx.reply = { kind: 'json', status: 200, body };
    return ctx.reply;
  }

  const misses = items.flatMap((_, i) => (hits.has(i) ? [] : [i]));
  if (hits.size > 0) {
    // Only the misses go upstream (and are reserved and priced by the limits stage).
    ctx.embeddings = { ...request, input: misses.map((i) => items[i]!) as string[] | number[][] };
    ctx.responseHeaders['x-gateway-cache-hits'] = `${hits.size}/${items.length}`;
  }
  ctx.embeddingsCache = { cache, scope, lane: expected.lane, model, ttlMs: rule.ttlMs, maxEntryBytes: settings.maxEntryBytes, items, keys, hits, misses, encoding, fresh: undefined };
  reportOutcome(ctx, cache, { status: 'miss', scope: scopeKind, ...key, ...(use.reason ? { reason: use.reason } : {}), items: itemCounts }, hits.size > 0 ? 'partial' : 'miss');
}

/** Reply stage, JSON part: notes the new vectors for the after phase and reassembles the batch. */
export function completeEmbeddings(ctx: RequestContext, reply: JsonReply): void {
  const pending = ctx.embeddingsCache;
  if (!pending || reply.status !== 200) return;
  const body = reply.body as EmbeddingsResponse;
  const data = [...body.data].sort((a, b) => a.index - b.index);
  const fresh = data.map((d) => vectorOf(d));
  if (data.length !== pending.misses.length || fresh.some((v) => v === undefined)) {
    pending.cache.metrics.notStored.labels('embeddings', 'unexpected_answer').inc(pending.misses.length);
    if (pending.hits.size === 0) return; // nothing to reassemble: the answer goes out as the provider sent it
    throw new GatewayError('upstream_error', `The provider answered ${data.length} embeddings for ${pending.misses.length} inputs. Retry the request.`);
  }
  const vectors = fresh as Array<ArrayLike<number>>;
  const upstreamTokens = body.usage?.prompt_tokens ?? 0;
  const shares = apportion(upstreamTokens, pending.misses.map((i) => weightOf(pending.items[i]!)));
  pending.fresh = { vectors, shares, upstreamModel: body.model, deployment: ctx.deployment?.id ?? '' };

  if (pending.hits.size === 0) return;
  const out: Array<ArrayLike<number>> = new Array(pending.items.length);
  let hitTokens = 0;
  let hitDeployment = '';
  for (const [i, entry] of pending.hits) {
    out[i] = decodeVector(entry.vector);
    hitTokens += entry.tokens;
    hitDeployment ||= entry.deployment;
  }
  pending.misses.forEach((i, k) => (out[i] = vectors[k]!));
  recordSavings(pending.cache, ctx, hitDeployment, { prompt_tokens: hitTokens, completion_tokens: 0 });
  // The client sees the usage of its whole batch; the gateway's own usage (budgets, spend) stays the upstream's.
  reply.body = {
    ...body,
    data: out.map((v, index): Embedding => ({ object: 'embedding', index, embedding: encode(v, pending.encoding) })),
    usage: { ...body.usage, prompt_tokens: upstreamTokens + hitTokens, total_tokens: (body.usage?.total_tokens ?? upstreamTokens) + hitTokens },
  };
}

/** After stage: stores the vectors the upstream answered, off the client's path. */
export function storeEmbeddings(ctx: RequestContext): void {
  const pending = ctx.embeddingsCache;
  if (!pending?.fresh) return;
  const { vectors, shares, upstreamModel, deployment } = pending.fresh;
  const entries: Array<{ key: EntryKey; value: string; ttlMs: number }> = [];
  const now = Date.now();
  pending.misses.forEach((i, k) => {
    const entry: EmbeddingEntry = {
      v: ENTRY_FORMAT,
      kind: 'embedding',
      scope: pending.scope,
      lane: pending.lane,
      model: pending.model,
      deployment,
      created_at: now,
      upstream_model: upstreamModel,
      tokens: shares[k]!,
      vector: encodeVector(vectors[k]!),
    };
    const value = JSON.stringify(entry);
    if (Buffer.byteLength(value) > pending.maxEntryBytes) pending.cache.metrics.notStored.labels('embeddings', 'oversized').inc();
    else entries.push({ key: pending.keys[i]!, value, ttlMs: pending.ttlMs });
  });
  pending.cache.write(entries, { endpoint: 'embeddings', ...cacheLabels(ctx) });
}

function vectorOf(d: Embedding): ArrayLike<number> | undefined {
  if (typeof d.embedding === 'string') return fromBase64Float32(d.embedding);
  if (Array.isArray(d.embedding) && d.embedding.every((x) => typeof x === 'number' && Number.isFinite(x))) return d.embedding;
  return undefined;
}

function encode(vector: ArrayLike<number>, encoding: 'float' | 'base64'): number[] | string {
  return encoding === 'base64' ? toBase64Float32(vector) : Array.from(vector);
}

function weightOf(item: Item): number {
  return Math.max(1, typeof item === 'string' ? Buffer.byteLength(item) : item.length);
}

/**
 * Splits the batch's prompt tokens over its inputs in proportion to their
 * size (largest remainders, so the shares add up to the total exactly). A
 * provider reports one total per batch; counting each input with a tokenizer
 * would cost more than the estimate is worth.
 */
export function apportion(total: number, weights: number[]): number[] {
  const sum = weights.reduce((a, b) => a + b, 0);
  if (weights.length === 0) return [];
  const exact = weights.map((w) => (total * w) / sum);
  const shares = exact.map(Math.floor);
  let left = total - shares.reduce((a, b) => a + b, 0);
  const order = exact.map((x, i) => [x - Math.floor(x), i] as const).sort((a, b) => b[0] - a[0]);
  for (const [, i] of order) {
    if (left <= 0) break;
    shares[i]!++;
    left--;
  }
  return shares;
}
