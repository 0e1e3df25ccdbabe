import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ChatChunk } from '../../src/api/schemas.js';
import { requestedCacheMode } from '../../src/cache/control.js';
import { apportion } from '../../src/cache/embeddings-stage.js';
import { decodeChatEntry, decodeEmbeddingEntry, decodeVector, encodeVector } from '../../src/cache/entry.js';
import { canonicalJson, chatKeyHash, embeddingsKeyPrefix } from '../../src/cache/keys.js';
import { sha256Hex as sha256 } from '../../src/sha256.js';
import type { RequestContext } from '../../src/pipeline/context.js';
import { StreamAssembler } from '../../src/api/assemble.js';
import { completionToChunks } from '../../src/cache/stream.js';

const base = { id: 'chatcmpl-1', object: 'chat.completion.chunk' as const, created: 1, model: 'm' };

describe('cache canonical forms', () => {
  it('canonical form – key order and whitespace do not matter; values do', () => {
    const a = JSON.parse('{"b": [1, {"y": 2, "x": 1}], "a": "t"}');
    const b = JSON.parse('{"a":"t","b":[1,{"x":1,"y":2}]}');
    assert.equal(canonicalJson(a), canonicalJson(b));
    assert.equal(canonicalJson(a), '{"a":"t","b":[1,{"x":1,"y":2}]}');
    assert.notEqual(canonicalJson({ a: 't ' }), canonicalJson({ a: 't' }));
    assert.equal(canonicalJson({ a: undefined, b: 1 }), '{"b":1}');
  });

  it('canonical form – key content is pinned: changing what goes into a key needs a KEY_FORMAT bump', () => {
    // Entries already in Redis are found by these exact texts: if this test
    // fails, bump KEY_FORMAT (old entries are then never matched) and update it.
    const deployment = { id: 'mock/mock-fast', model: 'mock-fast', params: { temperature: 0.5, max_tokens: null } };
    const ctx = { lane: 'green', model: { name: 'fast' }, candidates: [deployment], prompt: { name: 'triage', version: 'v2' } } as unknown as RequestContext;
    const chat = { model: 'fast', stream: true, user: 'u-1', seed: null, messages: [{ role: 'user', content: 'hi "there"' }], temperature: 0, tools: [{ type: 'function', function: { name: 'f', parameters: { type: 'object', b: 1, a: 2 } } }] };
    const chatText =
      '{"endpoint":"chat","lane":"green","model":"fast","prompt":{"name":"triage","version":"v2"},' +
      '"request":{"messages":[{"content":"hi \\"there\\"","role":"user"}],"temperature":0,"tools":[{"function":{"name":"f","parameters":{"a":2,"b":1,"type":"object"}},"type":"function"}]},' +
      '"scope":"team:ops","targets":"mock/mock-fast|mock-fast|{\\"max_tokens\\":null,\\"temperature\\":0.5}","v":1}';
    assert.equal(chatKeyHash(ctx, chat as never, 'team:ops'), sha256(chatText));
    const embeddings = { model: 'embed', input: ['a'], encoding_format: 'base64', dimensions: 64, user: 'u', extra: 'x' };
    assert.equal(
      embeddingsKeyPrefix({ ...ctx, prompt: undefined } as RequestContext, embeddings as never, 'shared'),
      '{"dimensions":64,"endpoint":"embeddings","lane":"green","model":"fast","prompt":null,"request":{"dimensions":64,"extra":"x"},"scope":"shared","targets":"mock/mock-fast|mock-fast|{\\"max_tokens\\":null,\\"temperature\\":0.5}","v":1}',
    );
  });

  it('canonical form – a stream assembles into the completion it replays as, tool calls and usage included', () => {
    const chunks: ChatChunk[] = [
      { ...base, system_fingerprint: 'fp', choices: [{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null }] },
      { ...base, choices: [{ index: 0, delta: { content: 'Hel' }, finish_reason: null }] },
      { ...base, choices: [{ index: 0, delta: { content: 'lo' }, finish_reason: null }] },
      { ...base, choices: [{ index: 0, delta: { tool_calls: [{ index: 0, id: 'call_1', type: 'function', function: { name: 'search', arguments: '{"q":' } }] }, finish_reason: null }] },
      { ...base, choices: [{ index: 0, delta: { tool_calls: [{ index: 0, function: { arguments: '"x"}' } }] }, finish_reason: null }] },
      { ...base, choices: [{ index: 0, delta: {}, finish_reason: 'tool_calls' }] },
      { ...base, choices: [], usage: { prompt_tokens: 3, completion_tokens: 4, total_tokens: 7 } },
    ];
    const assembler = new StreamAssembler();
    for (const c of chunks) assembler.add(c);
    const completion = assembler.storable()!;
    assert.deepEqual(completion, {
      id: 'chatcmpl-1',
      object: 'chat.completion',
      created: 1,
      model: 'm',
      system_fingerprint: 'fp',
      choices: [{ index: 0, message: { role: 'assistant', content: 'Hello', tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'search', arguments: '{"q":"x"}' } }] }, finish_reason: 'tool_calls' }],
      usage: { prompt_tokens: 3, completion_tokens: 4, total_tokens: 7 },
    });
    const again = new StreamAssembler();
    for (const c of completionToChunks(completion)) again.add(c);
    assert.deepEqual(again.storable(), completion);
  });

  it('canonical form – unfinished, usage-less or unknown streams are not storable', () => {
    const unfinished = new StreamAssembler();
    unfinished.add({ ...base, choices: [{ index: 0, delta: { content: 'x' }, finish_reason: null }], usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 } });
    assert.equal(unfinished.storable(), undefined);
    const noUsage = new StreamAssembler();
    noUsage.add({ ...base, choices: [{ index: 0, delta: { content: 'x' }, finish_reason: 'stop' }] });
    assert.equal(noUsage.storable(), undefined);
    const unknown = new StreamAssembler();
    unknown.add({ ...base, choices: [{ index: 0, delta: { content: 'x', audio: { data: 'AAA' } }, finish_reason: 'stop' }], usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 } });
    assert.equal(unknown.storable(), undefined);
  });

  it('canonical form – entries: scope and lane are checked, malformed ones refused', () => {
    const completion = { id: 'c', object: 'chat.completion', created: 1, model: 'm', choices: [{ index: 0, message: { role: 'assistant', content: 'hi' }, finish_reason: 'stop' }], usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 } };
    const entry = { v: 1, kind: 'chat', scope: 'team:a', lane: 'green', model: 'fast', deployment: 'mock/x', created_at: 5, completion };
    const raw = JSON.stringify(entry);
    assert.equal(decodeChatEntry(raw, { scope: 'team:a', lane: 'green' }).ok, true);
    assert.deepEqual(decodeChatEntry(raw, { scope: 'team:b', lane: 'green' }), { ok: false, reason: 'scope_mismatch' });
    assert.deepEqual(decodeChatEntry(raw, { scope: 'team:a', lane: 'amber' }), { ok: false, reason: 'scope_mismatch' });
    assert.deepEqual(decodeChatEntry(raw.slice(0, -1), { scope: 'team:a', lane: 'green' }), { ok: false, reason: 'corrupt' });
    assert.deepEqual(decodeChatEntry(JSON.stringify({ ...entry, v: 2 }), { scope: 'team:a', lane: 'green' }), { ok: false, reason: 'corrupt' });

    const vector = [0.1, -2.5e-8, 3, 1 / 3];
    const emb = { ...entry, kind: 'embedding', upstream_model: 'e', tokens: 3, vector: encodeVector(vector) };
    delete (emb as { completion?: unknown }).completion;
    const decoded = decodeEmbeddingEntry(JSON.stringify(emb), { scope: 'team:a', lane: 'green' });
    assert.ok(decoded.ok);
    assert.deepEqual(Array.from(decodeVector(decoded.entry.vector)), vector);
    assert.deepEqual(decodeEmbeddingEntry(JSON.stringify({ ...emb, vector: emb.vector.slice(0, -4) }), { scope: 'team:a', lane: 'green' }), { ok: false, reason: 'corrupt' });
  });

  it('canonical form – batch tokens split over inputs add up exactly', () => {
    assert.deepEqual(apportion(10, [1, 1, 1]), [4, 3, 3]);
    assert.deepEqual(apportion(7, [5]), [7]);
    const shares = apportion(1_001, [3, 70, 12, 9, 1]);
    assert.equal(shares.reduce((a, b) => a + b, 0), 1_001);
  });

  it('canonical form – cache request headers', () => {
    assert.deepEqual(requestedCacheMode({}), { mode: 'use' });
    assert.deepEqual(requestedCacheMode({ 'cache-control': 'no-cache' }), { mode: 'refresh', reason: 'no_cache' });
    assert.deepEqual(requestedCacheMode({ 'cache-control': 'no-cache, no-store' }), { mode: 'bypass', reason: 'no_store' });
    assert.deepEqual(requestedCacheMode({ 'x-gateway-cache': 'OFF' }), { mode: 'bypass', reason: 'header_off' });
    assert.deepEqual(requestedCacheMode({ 'x-gateway-cache': 'refresh' }), { mode: 'refresh', reason: 'header_refresh' });
    assert.throws(() => requestedCacheMode({ 'x-gateway-cache': 'maybe' }), /x-gateway-cache must be/);
  });
});
