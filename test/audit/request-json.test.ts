// The hand-written request record line must be exactly what JSON.stringify
// writes for the same record (with bodies last), and must write every member
// the schema has: a member added to the schema but not to the writer fails here.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RawJson } from '../../src/audit/raw-json.js';
import { REQUEST_RECORD_MEMBERS, requestRecordJson } from '../../src/audit/request-json.js';
import { attemptSchema, bodiesSchema, requestRecordSchema, toolCallSchema, type AuditRequestRecord } from '../../src/audit/schema.js';
import { TOOL_BLOCK_RULES } from '../../src/policy/tools.js';

/** A small deterministic PRNG (mulberry32), so a failure names a seed that reproduces it. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// Strings JSON must escape, or that look like it might: quotes, backslashes,
// controls, a lone surrogate, a surrogate pair, non-ASCII, and plain text.
const STRINGS = ['plain', '', 'with "quotes"', 'back\\slash', 'line\nbreak\ttab', '\u0000\u001f', 'lone \ud800 surrogate', 'pair 😀', 'ünïcödé', '</script>', 'a'.repeat(300)];
const NUMBERS = [0, -0, 1, -1, 3.25, 1e21, 1.5e-7, 12345678901234, Number.NaN, Number.POSITIVE_INFINITY];

function record(seed: number): AuditRequestRecord {
  const r = prng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  const s = () => pick(STRINGS);
  const n = () => pick(NUMBERS);
  const maybe = <T>(make: () => T): T | null => (r() < 0.3 ? null : make());
  const some = <T>(make: () => T): T[] => Array.from({ length: pick([0, 0, 1, 3]) }, make);
  const full = r() < 0.5;
  const bodies: AuditRequestRecord['bodies'] = {
    mode: full ? 'full' : pick(['redacted', 'hash'] as const),
    request: full ? new RawJson(JSON.stringify({ model: s(), messages: [{ role: 'user', content: s() }] })) : maybe(() => ({ model: s(), n: n() })),
    response: full ? maybe(() => new RawJson(JSON.stringify({ id: s(), choices: [] }))) : maybe(() => ({ text: s() })),
    request_sha256: maybe(() => 'a'.repeat(64)),
    // Undefined members are left out, as JSON.stringify leaves them out.
    ...(r() < 0.2 ? { restricted_from: undefined } : {}),
    response_sha256: maybe(() => 'b'.repeat(64)),
  };
  return {
    v: 2,
    kind: 'request',
    id: s(),
    time: new Date(1_700_000_000_000 + seed).toISOString(),
    endpoint: pick(['chat', 'embeddings', 'responses', 'messages', 'count_tokens'] as const),
    api: { shape: pick(['openai', 'anthropic'] as const), upstream: maybe(() => pick(['native', 'translated'] as const)) },
    key_id: maybe(s),
    app: maybe(s),
    team: maybe(s),
    model: maybe(s),
    lane: maybe(() => ({ name: s(), reasons: some(s), bodies: pick(['full', 'redacted', 'hash'] as const), retention_days: n() })),
    policy: maybe(() => ({
      findings: some(() => ({ detector: s(), action: s(), count: n() })),
      redactions: n(),
      stripped_tools: some(s),
      blocked_tool_calls: some(() => ({ tool: s(), rule: pick(TOOL_BLOCK_RULES), reason: s() })),
      approvals: some(() => ({ id: s(), tool: s() })),
    })),
    prompt: maybe(() => ({ template: s(), version: maybe(s) })),
    route: maybe(() => ({ name: s(), rule: maybe(s), model: s() })),
    deployment: maybe(s),
    provider: maybe(s),
    response_model: maybe(s),
    degraded: r() < 0.5,
    stream: r() < 0.5,
    status: n(),
    error_code: maybe(s),
    // Attempts are the context's own objects, built as dispatch.ts's recordAttempt builds them.
    attempts: some(() => ({
      deployment: s(),
      provider: s(),
      startMs: n(),
      latencyMs: n(),
      retry: n(),
      fallback: r() < 0.5,
      ...(r() < 0.3 ? { degraded: true } : {}),
      ...(r() < 0.5 ? { status: n() } : { code: s(), errorClass: pick(['timeout', undefined] as const), status: pick([n(), undefined]) }),
    })),
    // Built as record.ts's cacheOf builds it.
    cache: maybe(() => ({
      status: s(),
      ...(r() < 0.5 ? { reason: s() } : {}),
      ...(r() < 0.5 ? { scope: s(), key: s() } : {}),
      ...(r() < 0.5 ? { age: n() } : {}),
      ...(r() < 0.3 ? { items: { hits: n(), total: n() } } : {}),
    })),
    usage: maybe(() => ({ prompt_tokens: n(), completion_tokens: n(), total_tokens: n(), ...(r() < 0.5 ? { cache_read_tokens: n(), cache_write_tokens: n() } : {}) })),
    cost: maybe(() => ({ usd: n(), nano_usd: n(), priced: r() < 0.5 })),
    budgets: some(s),
    tools: { offered: some(s), called: some(() => ({ id: s(), name: s(), arguments: maybe(s), arguments_sha256: 'c'.repeat(64) })) },
    bodies,
    timings: { queue_ms: maybe(n), first_byte_ms: maybe(n), total_ms: maybe(n) },
    client_disconnected: r() < 0.5,
    trace_id: maybe(s),
    span_id: maybe(s),
    run_id: maybe(s),
    client: s(),
  };
}

describe('request record JSON', () => {
  it('is byte for byte what JSON.stringify writes, bodies last, for 2,000 varied records', () => {
    for (let seed = 1; seed <= 2000; seed++) {
      const r = record(seed);
      const { bodies, ...rest } = r;
      // Raw bodies are compact JSON text: parsed, JSON.stringify writes them back byte for byte.
      const plain = Object.fromEntries(Object.entries(bodies).map(([k, v]) => [k, v instanceof RawJson ? JSON.parse(v.text) : v]));
      const expected = JSON.stringify({ ...rest, bodies: plain });
      assert.equal(requestRecordJson(r), expected, `seed ${seed}`);
      // Any other serialization (JSON.stringify, through RawJson.toJSON) reads the same.
      assert.equal(JSON.stringify({ ...rest, bodies }), expected, `seed ${seed}: the generic path agrees`);
    }
  });

  it('writes every member of the schema, in its documented order', () => {
    const members = Object.keys(requestRecordSchema.shape).filter((k) => k !== 'prev' && k !== 'hash');
    assert.deepEqual([...REQUEST_RECORD_MEMBERS].sort(), members.sort());
    const written = Object.keys(JSON.parse(requestRecordJson(record(7))) as object);
    assert.deepEqual(written, [...REQUEST_RECORD_MEMBERS]);
  });

  it('writes every member of the schema’s nested objects, optional ones included', () => {
    const full: AuditRequestRecord = {
      ...record(11),
      lane: { name: 'green', reasons: ['r'], bodies: 'full', retention_days: 30 },
      policy: { findings: [{ detector: 'email', action: 'redact', count: 1 }], redactions: 1, stripped_tools: ['t'], blocked_tool_calls: [{ tool: 't', rule: 'not_offered', reason: 'x' }], approvals: [{ id: 'a', tool: 't' }] },
      prompt: { template: 'triage', version: 'v2' },
      route: { name: 'auto', rule: 'long', model: 'smart' },
      attempts: [{ deployment: 'd', provider: 'p', startMs: 1, latencyMs: 2, retry: 0, fallback: false, degraded: true, code: 'timeout', errorClass: 'timeout', status: 504 }],
      cache: { status: 'hit', reason: 'r', scope: 'team', key: 'k', age: 3, items: { hits: 1, total: 2 } },
      usage: { prompt_tokens: 1, completion_tokens: 2, total_tokens: 3, cache_read_tokens: 1, cache_write_tokens: 0 },
      cost: { usd: 1, nano_usd: 1e9, priced: true },
      tools: { offered: ['t'], called: [{ id: 'c', name: 't', arguments: '{}', arguments_sha256: 'c'.repeat(64) }] },
      bodies: { mode: 'hash', request: null, response: null, request_sha256: 'a'.repeat(64), response_sha256: 'b'.repeat(64) },
      timings: { queue_ms: 1, first_byte_ms: 2, total_ms: 3 },
    };
    const written = JSON.parse(requestRecordJson(full)) as Record<string, Record<string, unknown>>;
    type Shape = { shape: Record<string, unknown> };
    const objectOf = (schema: unknown): Shape => {
      let s = schema as { shape?: unknown; unwrap?: () => unknown };
      while (!s.shape && s.unwrap) s = s.unwrap() as typeof s;
      return s as Shape;
    };
    const keys = (schema: unknown) => Object.keys(objectOf(schema).shape).sort();
    const shape = requestRecordSchema.shape;
    for (const member of ['lane', 'policy', 'prompt', 'route', 'cache', 'usage', 'cost', 'tools', 'timings'] as const) {
      assert.deepEqual(Object.keys(written[member]!).sort(), keys(shape[member]), member);
    }
    assert.deepEqual(Object.keys((written.attempts as unknown as object[])[0]!).sort(), keys(attemptSchema), 'attempts');
    assert.deepEqual(Object.keys((written.tools!.called as object[])[0]!).sort(), keys(toolCallSchema), 'tools.called');
    assert.deepEqual(Object.keys(written.bodies!).sort(), keys(bodiesSchema), 'bodies');
    assert.deepEqual(Object.keys(written.cache!.items as object).sort(), ['hits', 'total']);
  });

  it('writes a line that is one line of valid JSON even for text with line breaks', () => {
    const r = record(3);
    r.id = 'a\nb\r\u2028c';
    const line = requestRecordJson(r);
    assert.ok(!line.includes('\n') && !line.includes('\r'));
    assert.equal((JSON.parse(line) as { id: string }).id, 'a\nb\r\u2028c');
  });
});
