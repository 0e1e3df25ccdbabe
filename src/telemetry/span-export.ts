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
  #held: Encoded[] = [];
  #heldBytes = 0;
  #timer: NodeJS.Timeout | undefined;
  #inFlight = new Set<Promise<void>>();
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

  /** Spans dropped (nothing could hold them) and lost (their export failed) so far. */
  get lost(): { dropped: number; failed: number; heldBytes: number } {
    return { dropped: this.#dropped, failed: this.#failed, heldBytes: this.#heldBytes };
  }

  onStart(_span: Span, _context: Context): void {}

  onEnd(span: ReadableSpan): void {
    if (this.#closed || (span.spanContext().traceFlags & SAMPLED) === 0) return;
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
    if (this.#heldBytes >= MAX_HELD_BYTES) return this.#drop(spans.length);
    let bytes: Uint8Array | undefined;
    try {
      bytes = ProtobufTraceSerializer.serializeRequest(spans);
    } catch (err) {
      this.#logger.warn({ err: String(err), spans: spans.length }, 'could not encode spans for export; they are dropped');
    }
    if (!bytes) return this.#drop(spans.length);
    this.#held.push({ bytes, spans: spans.length });
    this.#heldBytes += bytes.length;
    if (this.#heldBytes >= EXPORT_BYTES) this.#send();
    else if (!this.#timer) {
      this.#timer = setTimeout(() => this.#send(), this.#intervalMs);
      this.#timer.unref();
    }
  }

  #drop(count: number): void {
    this.#dropped += count;
    const now = Date.now();
    if (now - this.#lastDropLog >= DROP_LOG_INTERVAL_MS) {
      this.#lastDropLog = now;
      this.#logger.warn({ dropped: this.#dropped, heldBytes: this.#heldBytes }, 'spans dropped: the OTLP endpoint is not taking them as fast as they come');
    }
  }

  #send(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    const chunks = this.#held;
    if (chunks.length === 0) return;
    this.#held = [];
    const bytes = chunks.reduce((n, c) => n + c.bytes.length, 0);
    const done = new Promise<void>((resolve) => {
      this.#exporter.export(chunks, (result) => {
        this.#heldBytes -= bytes;
        if (result.code !== ExportResultCode.SUCCESS) {
          this.#failed += chunks.reduce((n, c) => n + c.spans, 0);
          const now = Date.now();
          if (now - this.#lastFailLog >= DROP_LOG_INTERVAL_MS) {
            this.#lastFailLog = now;
            this.#logger.warn({ err: result.error?.message, lostSpans: this.#failed }, 'exporting spans failed (the SDK retried what it could); they are dropped');
          }
        }
        resolve();
      });
    });
    this.#inFlight.add(done);
    void done.then(() => this.#inFlight.delete(done));
  }

  async forceFlush(): Promise<void> {
    this.#encode();
    this.#send();
    await Promise.all([...this.#inFlight]);
  }

  async shutdown(): Promise<void> {
    if (this.#closed) return;
    await this.forceFlush();
    this.#closed = true;
    await this.#exporter.shutdown();
  }
}
