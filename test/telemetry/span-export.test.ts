// The eager span processor: spans ended in different turns reach the
// collector as one export of concatenated requests, a failing collector costs
// the spans (counted, logged once) but never memory, and shutdown flushes.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { BasicTracerProvider } from '@opentelemetry/sdk-trace-base';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { EagerSpanProcessor } from '../../src/telemetry/span-export.js';
import { memoryLogger } from '../helpers/logger.js';
import { decodeTraceRequest } from './otlp-decode.js';

async function collector(status: number, delayMs = 0) {
  const bodies: Buffer[] = [];
  const server = createServer(async (req, res) => {
    const parts: Buffer[] = [];
    try {
      for await (const chunk of req) parts.push(chunk as Buffer);
    } catch {
      return; // the exporter gave up on this request
    }
    bodies.push(Buffer.concat(parts));
    if (delayMs > 0) await new Promise((r) => setTimeout(r, delayMs).unref());
    res.writeHead(status, { 'content-type': 'application/x-protobuf' });
    res.end();
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/traces`, bodies, close: () => server.close(), closeAll: () => server.closeAllConnections() };
}

function setup(url: string) {
  const { logger, text } = memoryLogger();
  const processor = new EagerSpanProcessor({ url, headers: { 'x-test': 'yes' }, intervalMs: 60_000, logger });
  const provider = new BasicTracerProvider({ resource: resourceFromAttributes({ 'service.name': 'span-export-test' }), spanProcessors: [processor] });
  return { processor, provider, tracer: provider.getTracer('test'), logs: text };
}

const turn = () => new Promise((r) => setImmediate(r));

describe('eager span export', () => {
  it('sends spans ended in different turns as one export the collector decodes whole', async () => {
    const c = await collector(200);
    const { provider, tracer } = setup(c.url);
    try {
      for (let i = 0; i < 5; i++) {
        const span = tracer.startSpan(`op ${i}`, { attributes: { n: i, text: `t${i}`, ok: i % 2 === 0, ratio: i + 0.5 } });
        span.end();
        await turn(); // each span is encoded on its own
      }
      await provider.forceFlush();
      assert.equal(c.bodies.length, 1, 'one export for all five');
      const spans = decodeTraceRequest(c.bodies[0]!);
      assert.deepEqual(
        spans.map((s) => s.name),
        ['op 0', 'op 1', 'op 2', 'op 3', 'op 4'],
      );
      const attrs = Object.fromEntries(spans[3]!.attributes.map((a) => [a.key, a.value]));
      assert.deepEqual(attrs, { n: { intValue: 3 }, text: { stringValue: 't3' }, ok: { boolValue: false }, ratio: { doubleValue: 3.5 } });
    } finally {
      await provider.shutdown();
      c.close();
    }
  });

  it('a collector that refuses costs the spans, counted and logged once, and holds no memory', async () => {
    const c = await collector(400);
    const { provider, processor, tracer, logs } = setup(c.url);
    try {
      for (let round = 0; round < 3; round++) {
        tracer.startSpan('refused').end();
        await provider.forceFlush();
      }
      assert.equal(c.bodies.length, 3, 'each flush tried once (400 is not retryable)');
      assert.deepEqual(processor.lost, { dropped: 0, failed: 3, heldBytes: 0 });
      assert.equal(logs().split('\n').filter((l) => l.includes('exporting spans failed')).length, 1);
    } finally {
      await provider.shutdown();
      c.close();
    }
  });

  it('shutdown sends what is left; a span ending after it is counted as dropped', async () => {
    const c = await collector(200);
    const { provider, processor, tracer } = setup(c.url);
    tracer.startSpan('last').end();
    await provider.shutdown();
    tracer.startSpan('after shutdown').end();
    await turn();
    c.close();
    assert.deepEqual(
      c.bodies.flatMap((b) => decodeTraceRequest(b).map((s) => s.name)),
      ['last'],
    );
    assert.equal(processor.lost.dropped, 1);
  });

  it('a slow collector gets a few large exports, not one per turn, and loses nothing', async () => {
    const c = await collector(200, 800);
    const { provider, processor, tracer } = setup(c.url);
    try {
      const big = 'x'.repeat(2048);
      // Over 1 MB encoded: sent at once, and the collector takes 800 ms to answer.
      for (let i = 0; i < 600; i++) tracer.startSpan('big', { attributes: { big } }).end();
      await turn();
      for (let i = 0; i < 100; i++) {
        tracer.startSpan(`small ${i}`).end();
        await turn();
      }
      await new Promise((r) => setTimeout(r, 100));
      assert.ok(c.bodies.length <= 2, `${c.bodies.length} exports while the first was out`);
      await provider.forceFlush();
      assert.equal(c.bodies.reduce((n, b) => n + decodeTraceRequest(b).length, 0), 700);
      assert.deepEqual(processor.lost, { dropped: 0, failed: 0, heldBytes: 0 });
    } finally {
      await provider.shutdown();
      c.close();
    }
  });

  it('holds at most 32 MB for a collector that does not answer: spans beyond it are dropped and counted', async () => {
    const c = await collector(200, 60_000);
    const { provider, processor, tracer } = setup(c.url);
    try {
      const big = 'x'.repeat(8192);
      // 20 turns of 256 spans of ~8 KB: ~40 MB encoded, while the first exports hang.
      for (let turnNo = 0; turnNo < 20; turnNo++) {
        for (let i = 0; i < 256; i++) tracer.startSpan('big', { attributes: { big } }).end();
        await turn();
      }
      const lost = processor.lost;
      assert.ok(lost.dropped >= 256, `${lost.dropped} dropped`);
      assert.ok(lost.heldBytes <= (32 << 20) + (3 << 20), `${(lost.heldBytes / 2 ** 20).toFixed(1)} MB held`);
    } finally {
      c.close();
      c.closeAll();
      await provider.shutdown();
    }
  });
});
