// audit.otlp_logs: every record the sink writes is also sent to an OTLP/HTTP
// logs collector, its JSON line as the log body; a collector that refuses
// costs the mirror its copy (counted), never the sink's.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { Registry } from 'prom-client';
import { auditConfigSchema } from '../../src/audit/config.js';
import { auditMetrics } from '../../src/audit/metrics.js';
import { signalUrl, telemetryConfigSchema } from '../../src/telemetry/config.js';
import { createOtlpLogsMirror } from '../../src/audit/transport/otlp-logs.js';
import type { PendingRecord } from '../../src/audit/transport/pending.js';
import { startFakeOpenAI } from '../helpers/fake-openai.js';
import { memoryLogger } from '../helpers/logger.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { AUDIT_POLICIES, auditTestConfig, metricSum, postJson, recordOf, waitFor } from './fixtures.js';

type Value = { stringValue?: string; intValue?: number | string };
interface LogRecord {
  timeUnixNano: string;
  severityText: string;
  body: { stringValue: string };
  attributes: Array<{ key: string; value: Value }>;
}
interface LogsRequest {
  resourceLogs: Array<{ resource: { attributes: Array<{ key: string; value: Value }> }; scopeLogs: Array<{ scope: { name: string }; logRecords: LogRecord[] }> }>;
}

interface Received {
  /** When it arrived (performance.now()). */
  at: number;
  path: string;
  auth: string | undefined;
  /** Every content-type header sent, as sent. */
  types: string[];
  body: LogsRequest;
}

interface Answer {
  status: number;
  headers?: Record<string, string>;
  body?: string;
}

/** A logs collector answering `status`, or each request in turn with the next of `answers` (the last repeats); status 0 never answers. */
async function collector(status: number | Answer[]): Promise<{ url: string; requests: Received[]; server: Server }> {
  const requests: Received[] = [];
  const answers: Answer[] = typeof status === 'number' ? [{ status, body: '{}' }] : status;
  const server = createServer(async (req, res) => {
    const parts: Buffer[] = [];
    for await (const chunk of req) parts.push(chunk as Buffer);
    const answer = answers[Math.min(requests.length, answers.length - 1)]!;
    requests.push({ at: performance.now(), path: req.url ?? '', auth: req.headers['x-collector-key'] as string | undefined, types: req.rawHeaders.filter((v, i) => i % 2 === 1 && req.rawHeaders[i - 1]!.toLowerCase() === 'content-type'), body: JSON.parse(Buffer.concat(parts).toString('utf8')) as LogsRequest });
    if (answer.status === 0) return;
    res.writeHead(answer.status, { 'content-type': 'application/json', ...answer.headers });
    res.end(answer.body ?? '{}');
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, requests, server };
}

const audit = (endpoint: string, extra = '') =>
  `audit:\n  sink: file\n  dir: {{dir}}/audit\n${extra}  otlp_logs:\n    endpoint: ${endpoint}\n    headers: { x-collector-key: secret-1 }\n    service_name: lanegate-audit-test\n`;

type Collector = Awaited<ReturnType<typeof collector>>;

/** A gateway (file sink, mirrored to a collector answering `answers`) and a fake upstream, for the length of `run`. */
async function withMirror(answers: number | Answer[], extraAudit: string, run: (gw: TestGateway, c: Collector) => Promise<void>): Promise<void> {
  const upstream = await startFakeOpenAI();
  const c = await collector(answers);
  const gw = await startTestGateway({ yaml: auditTestConfig({ openaiUrl: upstream.url, audit: audit(c.url, extraAudit) }), files: { 'policies/lanes.yaml': AUDIT_POLICIES } });
  try {
    await run(gw, c);
  } finally {
    await gw.close();
    await upstream.close();
    c.server.close();
  }
}

describe('audit records mirrored to OTLP logs', () => {
  it('sends each record the sink wrote, its line as the body, with filterable attributes', async () => {
    await withMirror(200, '', async (gw, c) => {
      const ids: string[] = [];
      for (const text of ['first', 'second']) {
        const res = await postJson(gw, { model: 'gpt-fake', messages: [{ role: 'user', content: `mirror the ${text}` }] });
        assert.equal(res.status, 200);
        await res.text();
        ids.push(res.headers.get('x-request-id')!);
      }
      const logs = () => c.requests.flatMap((r) => r.body.resourceLogs.flatMap((rl) => rl.scopeLogs.flatMap((s) => s.logRecords)));
      await waitFor('both records at the collector', () => (logs().length >= 2 ? true : undefined));
      assert.ok(c.requests.every((r) => r.path === '/v1/logs' && r.auth === 'secret-1'));
      const resource = c.requests[0]!.body.resourceLogs[0]!;
      assert.deepEqual(resource.resource.attributes, [{ key: 'service.name', value: { stringValue: 'lanegate-audit-test' } }]);
      assert.equal(resource.scopeLogs[0]!.scope.name, 'lanegate.audit');

      for (const id of ids) {
        const log = logs().find((l) => l.attributes.some((a) => a.key === 'lanegate.request_id' && a.value.stringValue === id));
        assert.ok(log, `a log record for ${id}`);
        const fromFile = (await recordOf(gw, id)) as Record<string, unknown>;
        const { prev: _prev, hash: _hash, ...record } = fromFile;
        assert.deepEqual(JSON.parse(log.body.stringValue), record, 'the body is the record the sink has');
        assert.equal(log.severityText, 'INFO');
        assert.equal(BigInt(log.timeUnixNano), BigInt(Date.parse(record.time as string)) * 1_000_000n);
        const attrs = Object.fromEntries(log.attributes.map((a) => [a.key, a.value.stringValue ?? Number(a.value.intValue)]));
        assert.equal(attrs['lanegate.audit.kind'], 'request');
        assert.equal(attrs['lanegate.lane'], (record.lane as { name: string }).name);
        assert.equal(attrs['lanegate.team'], record.team);
        assert.equal(attrs['gen_ai.request.model'], 'gpt-fake');
        assert.equal(attrs['http.response.status_code'], 200);
      }
      // Counted once the collector has answered, a moment after it got them.
      await waitFor('the sent count', async () => ((await metricSum(gw, 'lanegate_audit_otlp_records_total', { result: 'sent' })) === logs().length ? true : undefined));
    });
  });

  it('carries the request’s trace and span ids in the log record’s own fields, so backends link it to the trace', async () => {
    const upstream = await startFakeOpenAI();
    const c = await collector(200);
    // A traces receiver (OTLP/HTTP JSON) beside the logs collector.
    const spans: Array<{ traceId: string; spanId: string; kind: number; attributes: Array<{ key: string; value: Value }> }> = [];
    const traces = createServer(async (req, res) => {
      const parts: Buffer[] = [];
      for await (const chunk of req) parts.push(chunk as Buffer);
      const body = JSON.parse(Buffer.concat(parts).toString('utf8')) as { resourceSpans: Array<{ scopeSpans: Array<{ spans: typeof spans }> }> };
      for (const rs of body.resourceSpans) for (const ss of rs.scopeSpans) spans.push(...ss.spans);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{}');
    });
    traces.listen(0, '127.0.0.1');
    await once(traces, 'listening');
    const tracesUrl = `http://127.0.0.1:${(traces.address() as AddressInfo).port}`;
    const gw = await startTestGateway({
      yaml: auditTestConfig({ openaiUrl: upstream.url, audit: audit(c.url), extra: `telemetry: { otlp_endpoint: "${tracesUrl}", protocol: http/json }` }),
      files: { 'policies/lanes.yaml': AUDIT_POLICIES },
    });
    try {
      const appTrace = '4bf92f3577b34da6a3ce929d0e0e4736';
      const res = await postJson(gw, { model: 'gpt-fake', messages: [{ role: 'user', content: 'link my log' }] }, { traceparent: `00-${appTrace}-00f067aa0ba902b7-01` });
      assert.equal(res.status, 200);
      await res.text();
      const id = res.headers.get('x-request-id')!;
      type Log = LogRecord & { traceId?: string; spanId?: string };
      const logs = () => c.requests.flatMap((r) => r.body.resourceLogs.flatMap((rl) => rl.scopeLogs.flatMap((sl) => sl.logRecords as Log[])));
      const log = await waitFor('the record at the collector', () => logs().find((l) => l.attributes.some((a) => a.key === 'lanegate.request_id' && a.value.stringValue === id)));
      // Shutdown exports the spans still buffered.
      await gw.gateway.shutdown();
      const server = spans.find((s) => s.kind === 2 && s.attributes.some((a) => a.key === 'lanegate.request_id' && a.value.stringValue === id));
      assert.ok(server, 'the request’s server span was exported');
      assert.equal(server.traceId, appTrace);
      assert.equal(log.traceId, server.traceId);
      assert.equal(log.spanId, server.spanId);
      const record = JSON.parse(log.body.stringValue) as { trace_id: string; span_id: string };
      assert.equal(record.trace_id, server.traceId);
      assert.equal(record.span_id, server.spanId);
      // The gateway's own records belong to no request's trace.
      for (const l of logs()) if (!l.attributes.some((a) => a.key === 'lanegate.request_id')) assert.equal(l.traceId, undefined);
    } finally {
      await gw.close();
      await upstream.close();
      c.server.close();
      traces.close();
    }
  });

  it('a collector that refuses loses only the copies: counted, and the sink keeps every record', async () => {
    await withMirror(400, '', async (gw, c) => {
      const res = await postJson(gw, { model: 'gpt-fake', messages: [{ role: 'user', content: 'refused copy' }] });
      assert.equal(res.status, 200);
      await res.text();
      await recordOf(gw, res.headers.get('x-request-id'));
      await waitFor('the dropped count', async () => ((await metricSum(gw, 'lanegate_audit_otlp_records_total', { result: 'dropped' })) >= 1 ? true : undefined));
      assert.equal(c.requests.length, 1, '400 is not retried');
      assert.equal(await metricSum(gw, 'lanegate_audit_otlp_records_total', { result: 'sent' }), 0);
      assert.match(gw.logs(), /not mirrored to the OTLP logs endpoint/);
      assert.doesNotMatch(gw.logs(), /secret-1/, 'the collector key is never logged');
    });
  });

  it('records still unsent at shutdown are counted and logged before the gateway exits', async () => {
    await withMirror(503, '  shutdown_flush_ms: 300\n', async (gw, c) => {
      const res = await postJson(gw, { model: 'gpt-fake', messages: [{ role: 'user', content: 'unsent at shutdown' }] });
      await res.text();
      await recordOf(gw, res.headers.get('x-request-id'));
      await waitFor('the first try', () => (c.requests.length >= 1 ? true : undefined));
      await gw.gateway.shutdown();
      const warning = gw
        .logs()
        .split('\n')
        .find((l) => l.includes('not mirrored to the OTLP logs endpoint'));
      assert.ok(warning, 'a warning before exit');
      assert.equal((JSON.parse(warning) as { dropped: number }).dropped, 1);
    });
  });
});

/** A record of `pad` bytes or so for the mirror. */
const pending = (i: number, pad = 0): PendingRecord => ({
  chain: 'green',
  bytes: Buffer.from(JSON.stringify({ i, ...(pad > 0 ? { pad: 'x'.repeat(pad) } : {}) })),
  facets: { id: `r${i}`, time: 1_700_000_000_000 + i, kind: 'request', team: 't', app: 'a', lane: 'green', model: 'm', status: 200 },
});

/** A mirror with its own registry, logging into memory. */
function mirrorAt(endpoint: string, headers: Record<string, string> = {}) {
  const registry = new Registry();
  const mirror = createOtlpLogsMirror({ endpoint, headers, service_name: 's' }, { records: auditMetrics(registry).otlpRecords, logger: memoryLogger().logger });
  const counts = async () => {
    const out: Record<string, number> = {};
    // Both results exist at 0 from the start; the counts that moved are the ones compared.
    for (const v of (await registry.getSingleMetric('lanegate_audit_otlp_records_total')!.get()).values) if (v.value > 0) out[String(v.labels.result)] = v.value;
    return out;
  };
  return { mirror, counts };
}

describe('OTLP logs mirror requests', () => {
  it('a large batch goes in requests of at most 8 MB of records, in order', async () => {
    const c = await collector(200);
    const { mirror } = mirrorAt(`${c.url}/base?tenant=a`, { 'Content-Type': 'text/plain' });
    mirror.send([0, 1, 2, 3, 4].map((i) => pending(i, 3 << 20)));
    await mirror.close(10_000);
    const perRequest = c.requests.map((r) => r.body.resourceLogs[0]!.scopeLogs[0]!.logRecords.map((l) => (JSON.parse(l.body.stringValue) as { i: number }).i));
    assert.deepEqual(perRequest, [[0, 1], [2, 3], [4]]);
    assert.ok(c.requests.every((r) => r.path === '/base/v1/logs?tenant=a'), 'the path gets /v1/logs, the query stays');
    assert.ok(c.requests.every((r) => r.types.length === 1 && r.types[0] === 'application/json'), 'one content type, the mirror’s');
    c.server.close();
  });

  it('waits as long as Retry-After says before trying again', async () => {
    const c = await collector([{ status: 503, headers: { 'retry-after': '1' } }, { status: 200 }]);
    const { mirror, counts } = mirrorAt(c.url);
    mirror.send([pending(1)]);
    await mirror.close(10_000);
    assert.equal(c.requests.length, 2);
    assert.ok(c.requests[1]!.at - c.requests[0]!.at >= 900, `retried after ${(c.requests[1]!.at - c.requests[0]!.at).toFixed(0)} ms, not the 1 s asked`);
    assert.equal((await counts()).sent, 1);
    c.server.close();
  });

  it('records a partial success rejected are counted as dropped, the rest as sent', async () => {
    const c = await collector([{ status: 200, body: '{"partialSuccess":{"rejectedLogRecords":"2","errorMessage":"too old"}}' }]);
    const { mirror, counts } = mirrorAt(c.url);
    mirror.send([pending(1), pending(2), pending(3)]);
    await mirror.close(10_000);
    assert.deepEqual(await counts(), { sent: 1, dropped: 2 });
    c.server.close();
  });

  it('holds at most 64 MB for a collector that does not answer: beyond it, and what is left at close, counted as dropped', async () => {
    const c = await collector([{ status: 0 }]);
    const { mirror, counts } = mirrorAt(c.url);
    // 66 batches of one ~1 MB record: the first is out, the collector never answers.
    for (let i = 0; i < 66; i++) mirror.send([pending(i, 1 << 20)]);
    assert.deepEqual(await counts(), { dropped: 3 }, 'only what fits in 64 MB is held');
    await mirror.close(200);
    assert.deepEqual(await counts(), { dropped: 66 }, 'the held ones are counted at close');
    c.server.closeAllConnections();
    c.server.close();
  });
});

describe('OTLP endpoints in config', () => {
  it('credentials in an endpoint URL are refused, for logs and for traces, naming the place to put them', () => {
    for (const result of [
      auditConfigSchema.safeParse({ otlp_logs: { endpoint: 'http://user:secret@collector:4318' } }),
      telemetryConfigSchema.safeParse({ otlp_endpoint: 'https://token@collector:4318' }),
    ]) {
      assert.equal(result.success, false);
      assert.match(JSON.stringify(result.error?.issues), /put them in headers/);
    }
    assert.equal(auditConfigSchema.safeParse({ otlp_logs: { endpoint: 'http://collector:4318?tenant=a' } }).success, true);
  });

  it('each signal gets /v1/<signal> added once, and a query stays a query', () => {
    assert.equal(signalUrl('http://c:4318', 'traces').href, 'http://c:4318/v1/traces');
    assert.equal(signalUrl('http://c:4318/', 'logs').href, 'http://c:4318/v1/logs');
    assert.equal(signalUrl('http://c:4318/otlp/v1/traces', 'traces').href, 'http://c:4318/otlp/v1/traces');
    assert.equal(signalUrl('http://c:4318/base?k=v', 'traces').href, 'http://c:4318/base/v1/traces?k=v');
  });
});
