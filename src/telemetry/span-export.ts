// Spans exported over OTLP/HTTP protobuf, encoded as soon as they end.
//
// The SDK's BatchSpanProcessor keeps every ended span object until its batch
// is exported (here once a second). Under load that is thousands of span
// objects, each with its attributes, times and resource, living long enough
// to be promoted to the old generation: the garbage collector's work doubled
// with tracing on. This processor encodes what ended in the same turn of the
// event loop (setImmediate) with the SDK's own protobuf serializer, keeps
// only the bytes, and sends them together on the same schedule, through the
// SDK's OTLP/HTTP export delegate (timeouts, retries on 429/502/503/504,
// headers, concurrency). Encoded export requests can simply be concatenated:
// in protobuf, two serialized ExportTraceServiceRequest messages one after
// the other read as one whose resource_spans are both lists.
import type { Context } from '@opentelemetry/api';
import { ExportResultCode } from '@opentelemetry/core';
import { OTLPExporterBase } from '@opentelemetry/otlp-exporter-base';
import { convertLegacyHttpOptions, createOtlpHttpExportDelegate } from '@opentelemetry/otlp-exporter-base/node-http';
import { ProtobufTraceSerializer, type ISerializer } from '@opentelemetry/otlp-transformer';
import type { ReadableSpan, Span, SpanProcessor } from '@opentelemetry/sdk-trace-base';
import type { Logger } from './logger.js';

/** Spans encoded together at most (more wait for the next turn). */
const ENCODE_SPANS = 256;
/** Encoded bytes that start an export before the interval is up. */
const EXPORT_BYTES = 1 << 20;
/** Encoded bytes held at most while exports fail or lag; spans beyond are dropped and counted. */
const MAX_HELD_BYTES = 32 << 20;
const DROP_LOG_INTERVAL_MS = 10_000;
/** Exports out at once: a slow collector then holds spans here (bounded), not in the SDK's own queue. */
const MAX_IN_FLIGHT = 2;
const SAMPLED = 1;

interface Encoded {
  bytes: Uint8Array;
  spans: number;
}

/** The export request of several encoded chunks: their bytes one after the other. */
const concatenating: ISerializer<Encoded[], unknown> = {
  serializeRequest(chunks) {
    if (chunks.length === 1) return chunks[0]!.bytes;
    return Buffer.concat(chunks.map((c) => c.bytes));
  },
  deserializeResponse: (data) => ProtobufTraceSerializer.deserializeResponse(data),
};

export interface EagerSpanExportOptions {
  url: string;
  headers: Record<string, string>;
  /** How often what was encoded is sent. */
  intervalMs: number;
  logger: Logger;
}

export class EagerSpanProcessor implements SpanProcessor {
  readonly #exporter: OTLPExporterBase<Encoded[]>;
  readonly #intervalMs: number;
  readonly #logger: Logger;
  #ended: ReadableSpan[] = [];
  #immediate: NodeJS.Immediate | undefined;
  /** Encoded, not yet handed to the exporter. */
  #waiting: Encoded[] = [];
  #waitingBytes = 0;
  /** Handed to the exporter, not yet answered. */
  #inFlight = new Set<Promise<void>>();
  #inFlightBytes = 0;
  #timer: NodeJS.Timeout | undefined;
  #dropped = 0;
  #lastDropLog = 0;
  #failed = 0;
  #lastFailLog = 0;
  #closed = false;

  constructor(o: EagerSpanExportOptions) {
    this.#intervalMs = o.intervalMs;
    this.#logger = o.logger;
    const http = convertLegacyHttpOptions({ url: o.url, headers: o.headers }, 'TRACES', 'v1/traces', { 'Content-Type': 'application/x-protobuf' });
    this.#exporter = new OTLPExporterBase(
      createOtlpHttpExportDelegate(http, concatenating, 'lanegate_otlp_span_exporter', { name: 'span', countItems: (chunks) => chunks.reduce((n, c) => n + c.spans, 0) }, undefined),
    );
  }

  /** Spans dropped (nothing could hold them, or they ended after shutdown) and lost (their export failed) so far. */
  get lost(): { dropped: number; failed: number; heldBytes: number } {
    return { dropped: this.#dropped, failed: this.#failed, heldBytes: this.#waitingBytes + this.#inFlightBytes };
  }

  onStart(_span: Span, _context: Context): void {}

  onEnd(span: ReadableSpan): void {
    if ((span.spanContext().traceFlags & SAMPLED) === 0) return;
    if (this.#closed) return this.#drop(1, 'ended after shutdown');
    this.#ended.push(span);
    if (this.#ended.length >= ENCODE_SPANS) this.#encode();
    else this.#immediate ??= setImmediate(() => this.#encode());
  }

  #encode(): void {
    if (this.#immediate) clearImmediate(this.#immediate);
    this.#immediate = undefined;
    const spans = this.#ended;
    if (spans.length === 0) return;
    this.#ended = [];
    if (this.#waitingBytes + this.#inFlightBytes >= MAX_HELD_BYTES) return this.#drop(spans.length, 'the OTLP endpoint is not taking them as fast as they come');
    let bytes: Uint8Array | undefined;
    try {
      bytes = ProtobufTraceSerializer.serializeRequest(spans);
    } catch (err) {
      this.#logger.warn({ err: String(err), spans: spans.length }, 'could not encode spans for export');
    }
    if (!bytes) return this.#drop(spans.length, 'could not encode them');
    this.#waiting.push({ bytes, spans: spans.length });
    this.#waitingBytes += bytes.length;
    this.#schedule();
  }

  /** Sends once enough is waiting (and an export slot is free), else on the interval. */
  #schedule(): void {
    if (this.#waitingBytes >= EXPORT_BYTES && this.#inFlight.size < MAX_IN_FLIGHT) this.#send();
    else if (this.#waiting.length > 0 && !this.#timer) {
      this.#timer = setTimeout(() => {
        this.#timer = undefined;
        this.#send();
      }, this.#intervalMs);
      this.#timer.unref();
    }
  }

  #drop(count: number, why: string): void {
    this.#dropped += count;
    const now = Date.now();
    if (now - this.#lastDropLog >= DROP_LOG_INTERVAL_MS) {
      this.#lastDropLog = now;
      this.#logger.warn({ dropped: this.#dropped, why }, 'spans dropped before export');
    }
  }

  /** Hands what is waiting to the exporter (one export request), whatever its size. */
  #send(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    const chunks = this.#waiting;
    if (chunks.length === 0) return;
    const bytes = this.#waitingBytes;
    this.#waiting = [];
    this.#waitingBytes = 0;
    this.#inFlightBytes += bytes;
    const done = new Promise<void>((resolve) => {
      this.#exporter.export(chunks, (result) => {
        this.#inFlightBytes -= bytes;
        if (result.code !== ExportResultCode.SUCCESS) {
          this.#failed += chunks.reduce((n, c) => n + c.spans, 0);
          const now = Date.now();
          if (now - this.#lastFailLog >= DROP_LOG_INTERVAL_MS) {
            this.#lastFailLog = now;
            this.#logger.warn({ err: result.error?.message, lostSpans: this.#failed }, 'exporting spans failed (after the SDK retried what it could); they are lost');
          }
        }
        resolve();
      });
    });
    this.#inFlight.add(done);
    void done.then(() => {
      this.#inFlight.delete(done);
      this.#schedule();
    });
  }

  async forceFlush(): Promise<void> {
    this.#encode();
    this.#send();
    while (this.#inFlight.size > 0) await Promise.all([...this.#inFlight]);
  }

  async shutdown(): Promise<void> {
    if (this.#closed) return;
    await this.forceFlush();
    // Spans that ended while that export was out go too; any later are dropped (counted).
    await this.forceFlush();
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#exporter.shutdown();
  }
}
