import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readdir, readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startFakeOpenAI, type FakeOpenAI } from '../helpers/fake-openai.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { AUDIT_POLICIES, auditTestConfig, postJson, readSse, recordOf, waitFor } from '../audit/fixtures.js';
import { decodeTraceRequest } from './otlp-decode.js';

type AnyValue = { stringValue?: string; intValue?: number | string; boolValue?: boolean; doubleValue?: number; arrayValue?: { values?: AnyValue[] } };
interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  attributes: Array<{ key: string; value: AnyValue }>;
  status?: { code?: number };
}
const SERVER = 2;
const CLIENT = 3;

type Value = string | number | boolean | Value[] | undefined;
const valueOf = (v: AnyValue): Value =>
  v.stringValue ?? (v.intValue !== undefined ? Number(v.intValue) : undefined) ?? v.boolValue ?? v.doubleValue ?? (v.arrayValue ? (v.arrayValue.values ?? []).map(valueOf) : undefined);

function attrs(span: OtlpSpan): Record<string, Value> {
  const out: Record<string, Value> = {};
  for (const a of span.attributes) out[a.key] = valueOf(a.value);
  return out;
}

/** An OTLP/HTTP receiver (protobuf or JSON), as a collector would be. */
async function startReceiver(): Promise<{ url: string; spans: OtlpSpan[]; requests: Array<{ path: string; type: string | undefined }>; server: Server }> {
  const spans: OtlpSpan[] = [];
  const requests: Array<{ path: string; type: string | undefined }> = [];
  const server = createServer(async (req, res) => {
    const parts: Buffer[] = [];
    for await (const chunk of req) parts.push(chunk as Buffer);
    const body = Buffer.concat(parts);
    const type = req.headers['content-type'];
    requests.push({ path: req.url ?? '', type });
    if (type?.startsWith('application/json')) {
      const parsed = JSON.parse(body.toString('utf8')) as { resourceSpans: Array<{ scopeSpans: Array<{ spans: OtlpSpan[] }> }> };
      for (const rs of parsed.resourceSpans) for (const ss of rs.scopeSpans) spans.push(...ss.spans);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{}');
    } else {
      spans.push(...decodeTraceRequest(body));
      res.writeHead(200, { 'content-type': 'application/x-protobuf' });
      res.end();
    }
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, spans, requests, server };
}

describe('OpenTelemetry traces', () => {
  let upstream: FakeOpenAI;
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  let gw: TestGateway;
  const appTrace = '0af7651916cd43dd8448eb211c80319c';
  const appParent = 'b7ad6b7169203331';
  const unsampledTrace = '11111111111111111111111111111111';
  const requestIds: Record<string, string> = {};
  let plainId = '';

  before(async () => {
    upstream = await startFakeOpenAI();
    receiver = await startReceiver();
    gw = await startTestGateway({
      yaml: auditTestConfig({ openaiUrl: upstream.url, extra: `telemetry: { otlp_endpoint: "${receiver.url}", service_name: lanegate-test }` }),
      files: { 'policies/lanes.yaml': AUDIT_POLICIES },
    });
    const plain = await postJson(gw, { model: 'gpt-fake', max_tokens: 50, temperature: 0.25, messages: [{ role: 'user', content: 'trace me' }] }, { traceparent: `00-${appTrace}-${appParent}-01` });
    assert.equal(plain.status, 200);
    plainId = ((await plain.json()) as { id: string }).id;
    requestIds.plain = plain.headers.get('x-request-id')!;
    const streamed = await postJson(gw, { model: 'gpt-fake', stream: true, messages: [{ role: 'user', content: 'trace my stream' }] });
    await readSse(streamed);
    requestIds.stream = streamed.headers.get('x-request-id')!;
    const fallback = await postJson(gw, { model: 'chain', messages: [{ role: 'user', content: 'trace my fallback' }] });
    await fallback.text();
    requestIds.fallback = fallback.headers.get('x-request-id')!;
    const unsampled = await postJson(gw, { model: 'gpt-fake', messages: [{ role: 'user', content: 'do not sample me' }] }, { traceparent: `00-${unsampledTrace}-${appParent}-00` });
    await unsampled.text();
    requestIds.unsampled = unsampled.headers.get('x-request-id')!;
    // Refused by the lane's api_key detector, before the model is resolved.
    const refused = await postJson(gw, { model: 'gpt-fake', messages: [{ role: 'user', content: 'sk-proj-AbCdEfGhIjKlMnOpQrStUv0123456789' }] });
    assert.equal(refused.status, 400);
    await refused.text();
    requestIds.refused = refused.headers.get('x-request-id')!;
    await recordOf(gw, requestIds.fallback);
    // Shutdown exports every span still buffered.
    await gw.gateway.shutdown();
  });
  after(async () => {
    await gw.close();
    await upstream.close();
    receiver.server.close();
  });

  const serverSpan = (id: string) => receiver.spans.find((s) => s.kind === SERVER && attrs(s)['lanegate.request_id'] === id)!;
  const children = (parent: OtlpSpan) => receiver.spans.filter((s) => s.parentSpanId === parent.spanId && s.traceId === parent.traceId);

  it('traces – exported over OTLP/HTTP (protobuf) to <endpoint>/v1/traces', () => {
    assert.ok(receiver.requests.length > 0);
    assert.ok(receiver.requests.every((r) => r.path === '/v1/traces' && r.type === 'application/x-protobuf'));
  });

  it('traces – one server span per request, continuing the app’s traceparent, with the GenAI attributes', () => {
    const span = serverSpan(requestIds.plain!);
    assert.ok(span, 'a server span for the request');
    assert.equal(span.traceId, appTrace);
    assert.equal(span.parentSpanId, appParent);
    assert.equal(span.name, 'chat gpt-fake');
    const a = attrs(span);
    assert.equal(a['gen_ai.operation.name'], 'chat');
    assert.equal(a['gen_ai.provider.name'], 'openai');
    assert.equal(a['gen_ai.system'], undefined, 'the current conventions, not the deprecated name');
    assert.equal(a['gen_ai.request.model'], 'gpt-fake');
    assert.equal(a['gen_ai.request.max_tokens'], 50);
    assert.equal(a['gen_ai.request.temperature'], 0.25);
    assert.equal(a['gen_ai.response.id'], plainId);
    assert.deepEqual(a['gen_ai.response.finish_reasons'], ['stop']);
    assert.equal(a['gen_ai.response.model'], 'gpt-4o-mini');
    assert.equal(a['gen_ai.usage.input_tokens'], 11);
    assert.equal(a['gen_ai.usage.output_tokens'], 5); // "Hello from fake-openai: trace me"
    assert.equal(a['http.response.status_code'], 200);
    assert.equal(a['lanegate.lane'], 'green');
  });

  it('traces – child spans for policy, cache, budget and each upstream attempt', () => {
    const span = serverSpan(requestIds.plain!);
    const names = children(span).map((s) => s.name);
    for (const n of ['lanegate.policy', 'lanegate.cache', 'lanegate.budget', 'chat gpt-4o-mini']) assert.ok(names.includes(n), `${n} in ${names.join(', ')}`);
    const attempt = children(span).find((s) => s.kind === CLIENT)!;
    const a = attrs(attempt);
    assert.equal(a['gen_ai.provider.name'], 'openai');
    assert.equal(a['gen_ai.system'], undefined);
    assert.equal(a['gen_ai.request.model'], 'gpt-4o-mini');
    assert.equal(a['gen_ai.request.max_tokens'], 50);
    assert.equal(a['gen_ai.request.temperature'], 0.25);
    assert.equal(a['gen_ai.response.model'], 'gpt-4o-mini');
    assert.equal(a['gen_ai.response.id'], plainId);
    assert.deepEqual(a['gen_ai.response.finish_reasons'], ['stop']);
    const upstreamUrl = new URL(upstream.url);
    assert.equal(a['server.address'], upstreamUrl.hostname);
    assert.equal(a['server.port'], Number(upstreamUrl.port));
    assert.equal(a['gen_ai.usage.input_tokens'], 11);
    assert.equal(a['lanegate.deployment'], 'fakeopenai/gpt-4o-mini');
    assert.notEqual(attempt.status?.code, 2, 'not an error');
  });

  it('traces – a refused request’s span is named after the model it asked for', () => {
    const span = serverSpan(requestIds.refused!);
    assert.ok(span, 'a server span for the refused request');
    assert.equal(span.name, 'chat gpt-fake');
    assert.equal(attrs(span)['gen_ai.request.model'], 'gpt-fake');
    assert.equal(attrs(span)['error.type'], 'policy_blocked');
    assert.equal(attrs(span)['http.response.status_code'], 400);
  });

  it('traces – the attempt’s context goes upstream in traceparent', () => {
    const span = serverSpan(requestIds.plain!);
    const attempt = children(span).find((s) => s.kind === CLIENT)!;
    const call = upstream.calls.find((c) => String(c.rawBody).includes('trace me'))!;
    assert.equal(call.headers.traceparent, `00-${appTrace}-${attempt.spanId}-01`);
  });

  it('traces – a fallback has one span per attempt, the failed one marked with its error', () => {
    const span = serverSpan(requestIds.fallback!);
    const attempts = children(span).filter((s) => s.kind === CLIENT);
    assert.equal(attempts.length, 2);
    const [failed, ok] = attempts.sort((x, y) => (attrs(x)['lanegate.attempt.fallback'] ? 1 : 0) - (attrs(y)['lanegate.attempt.fallback'] ? 1 : 0));
    assert.equal(attrs(failed!)['lanegate.deployment'], 'refused/gpt-4o-mini');
    assert.equal(attrs(failed!)['error.type'], 'upstream_unavailable');
    assert.equal(failed!.status?.code, 2);
    assert.equal(attrs(ok!)['lanegate.attempt.fallback'], true);
    assert.equal(attrs(ok!)['lanegate.deployment'], 'fakeopenai/gpt-4o-mini');
  });

  it('traces – a stream’s span carries the usage the stream reported; the audit record links to the trace', async () => {
    const span = serverSpan(requestIds.stream!);
    assert.equal(attrs(span)['lanegate.stream'], true);
    assert.ok(Number(attrs(span)['gen_ai.usage.output_tokens']) > 0);
    const record = await recordOf(gw, requestIds.stream!);
    assert.equal(record.trace_id, span.traceId);
  });

  it('traces – an app’s unsampled traceparent is followed: nothing exported, the decision goes upstream', () => {
    assert.ok(!receiver.spans.some((s) => s.traceId === unsampledTrace));
    const call = upstream.calls.find((c) => String(c.rawBody).includes('do not sample me'))!;
    assert.match(String(call.headers.traceparent), new RegExp(`^00-${unsampledTrace}-[0-9a-f]{16}-00$`));
  });
});

describe('tracing off', () => {
  it('tracing off – no trace, no traceparent upstream, and no OpenTelemetry import outside the lazy loader', async () => {
    const upstream = await startFakeOpenAI();
    const gw = await startTestGateway({ yaml: auditTestConfig({ openaiUrl: upstream.url }), files: { 'policies/lanes.yaml': AUDIT_POLICIES } });
    try {
      const res = await postJson(gw, { model: 'gpt-fake', messages: [{ role: 'user', content: 'untraced' }] });
      await res.text();
      assert.equal(upstream.calls.at(-1)!.headers.traceparent, undefined);
      const record = await waitFor('the record', async () => (await gw.auditRecords()).find((r) => r.id === res.headers.get('x-request-id')));
      assert.equal(record.trace_id, null);
    } finally {
      await gw.close();
      await upstream.close();
    }
    // The SDK must never load with tracing off: only type imports, and tracing.ts's import().
    // span-export.ts imports the SDK, so it may itself only ever be loaded with import().
    const src = path.resolve('src');
    const lazy = path.join(src, 'telemetry', 'span-export.ts');
    const offenders: string[] = [];
    for (const entry of await readdir(src, { recursive: true, withFileTypes: true })) {
      if (!entry.isFile() || !entry.name.endsWith('.ts')) continue;
      const file = path.join(entry.parentPath, entry.name);
      const text = await readFile(file, 'utf8');
      for (const line of text.split('\n')) {
        const sdk = /^\s*import\s+(?!type\b)[^;]*from\s+'@opentelemetry\//.test(line) || /^\s*export\s+[^;]*from\s+'@opentelemetry\//.test(line);
        if ((sdk && file !== lazy) || /^\s*(import|export)\s+(?!type\b)[^;]*from\s+'[^']*span-export\.js'/.test(line)) offenders.push(`${file}: ${line.trim()}`);
      }
    }
    assert.deepEqual(offenders, []);
  });
});

describe('tracing over OTLP/HTTP JSON', () => {
  it('traces – protocol http/json exports the same spans as JSON', async () => {
    const receiver = await startReceiver();
    const gw = await startTestGateway({
      yaml: auditTestConfig({ extra: `telemetry: { otlp_endpoint: "${receiver.url}/v1/traces", protocol: http/json }` }),
      files: { 'policies/lanes.yaml': AUDIT_POLICIES },
    });
    try {
      const res = await postJson(gw, { model: 'fast', messages: [{ role: 'user', content: 'json spans' }] });
      await res.text();
      await gw.gateway.shutdown();
      assert.ok(receiver.requests.every((r) => r.path === '/v1/traces' && r.type?.startsWith('application/json')));
      const server = receiver.spans.find((s) => s.kind === SERVER)!;
      assert.equal(attrs(server)['lanegate.request_id'], res.headers.get('x-request-id'));
      assert.equal(attrs(server)['gen_ai.provider.name'], 'lanegate.mock');
    } finally {
      await gw.close();
      receiver.server.close();
    }
  });
});
