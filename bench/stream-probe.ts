// Streaming probes, run by run.ts next to the fake upstream:
//
//   ttfb  sequential streamed requests, one at a time on one warm connection;
//         reports the time from send to the first body byte.
//   hold  opens --streams streamed requests at once (against a slow upstream)
//         and keeps them all open until they finish, so run.ts can read the
//         target's peak memory with that many streams in flight.
//
//   node stream-probe.js ttfb --url URL [--count 200] [--warmup 20] [--header 'k: v']... [--body JSON]
//   node stream-probe.js hold --url URL [--streams 128] [--header 'k: v']... [--body JSON]
import { parseArgs } from 'node:util';
import { Pool } from 'undici';
import { printResult, summarise } from './percentiles.js';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    url: { type: 'string' },
    count: { type: 'string', default: '200' },
    warmup: { type: 'string', default: '20' },
    streams: { type: 'string', default: '128' },
    header: { type: 'string', multiple: true, default: [] },
    // {n} becomes a per-request counter, so no two requests are the same.
    body: { type: 'string', default: '{"model":"bench","stream":true,"messages":[{"role":"user","content":"Say hello, request {n}."}]}' },
    'timeout-ms': { type: 'string', default: '10000' },
  },
});
const mode = positionals[0];
if (!values.url || (mode !== 'ttfb' && mode !== 'hold')) {
  console.error('Usage: stream-probe ttfb|hold --url URL [--count N] [--streams N] [--header "k: v"]... [--body JSON]');
  process.exit(2);
}

const url = new URL(values.url);
const timeoutMs = Number(values['timeout-ms']);
const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'text/event-stream' };
for (const line of values.header) {
  const colon = line.indexOf(':');
  if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
}
const [bodyHead = '', bodyTail = ''] = values.body.split('{n}');
let sent = 0;

interface StreamTiming {
  ok: boolean;
  status: number;
  ttfbMs: number;
  totalMs: number;
  /** Why it failed: the status and the start of the body, or the error. */
  error?: string;
}

async function streamOnce(pool: Pool, onFirstByte?: () => void): Promise<StreamTiming> {
  const body = bodyHead + sent++ + bodyTail;
  const sentAt = performance.now();
  const res = await pool.request({ method: 'POST', path: url.pathname + url.search, headers, body });
  let ttfbMs = Number.NaN;
  let tail = '';
  for await (const part of res.body) {
    if (Number.isNaN(ttfbMs)) {
      ttfbMs = performance.now() - sentAt;
      onFirstByte?.();
    }
    tail = (tail + (part as Buffer).toString('utf8')).slice(-64);
  }
  // A stream only counts if it ran to its end marker.
  const ok = res.statusCode === 200 && tail.includes('[DONE]');
  return { ok, status: res.statusCode, ttfbMs, totalMs: performance.now() - sentAt, ...(ok ? {} : { error: `${res.statusCode}: ${tail}` }) };
}

async function probeTtfb(): Promise<void> {
  const pool = new Pool(url.origin, { connections: 1, pipelining: 1, headersTimeout: timeoutMs, bodyTimeout: timeoutMs });
  const warmup = Number(values.warmup);
  const count = Number(values.count);
  const ttfbs = new Float64Array(count);
  let ok = 0;
  let errors = 0;
  for (let i = 0; i < warmup + count; i++) {
    const timing = await streamOnce(pool).catch((): StreamTiming | undefined => undefined);
    if (i < warmup) continue;
    if (timing?.ok) ttfbs[ok++] = timing.ttfbMs;
    else errors++;
  }
  await pool.close();
  printResult({ mode: 'ttfb', requests: count, ok, errors, ...summarise(ttfbs, ok) });
}

async function probeHold(): Promise<void> {
  const streams = Number(values.streams);
  const pool = new Pool(url.origin, { connections: streams, pipelining: 1, headersTimeout: timeoutMs, bodyTimeout: timeoutMs });
  let open = 0;
  let maxOpen = 0;
  // When the last stream's first byte came and when the first stream ended: all were open at once only if the first is before the second.
  let lastOpenedMs = 0;
  let firstEndedMs = Number.NaN;
  const started = performance.now();
  const timings = await Promise.all(
    Array.from({ length: streams }, () => {
      let counted = false;
      return streamOnce(pool, () => {
        counted = true;
        open++;
        maxOpen = Math.max(maxOpen, open);
        lastOpenedMs = performance.now() - started;
      })
        .catch((err: unknown): StreamTiming => ({ ok: false, status: 0, ttfbMs: Number.NaN, totalMs: Number.NaN, error: String(err) }))
        .finally(() => {
          if (Number.isNaN(firstEndedMs)) firstEndedMs = performance.now() - started;
          if (counted) open--;
        });
    }),
  );
  await pool.close();
  const ok = timings.filter((t) => t.ok);
  printResult({
    mode: 'hold',
    streams,
    ok: ok.length,
    errors: streams - ok.length,
    firstError: timings.find((t) => !t.ok)?.error,
    maxOpen,
    lastOpenedMs: Math.round(lastOpenedMs),
    firstEndedMs: Math.round(firstEndedMs),
    wallMs: Math.round(performance.now() - started),
    ttfb: summarise(ok.map((t) => t.ttfbMs)),
  });
}

const deadline = setTimeout(() => {
  console.error('stream-probe: gave up after the deadline');
  process.exit(1);
}, 120_000);
await (mode === 'ttfb' ? probeTtfb() : probeHold());
clearTimeout(deadline);
