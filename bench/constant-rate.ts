// An open-loop, constant-rate load generator. Request i is *scheduled* at
// start + i/rate whatever happened to earlier ones, and its latency is
// measured from that scheduled time to the last byte of its answer. A slow
// answer therefore cannot hold back the next send (no coordinated omission,
// unlike a closed-loop tool such as wrk, whose connections wait their turn).
//
//   node constant-rate.js --url URL --rate 1000 --duration 10 [--warmup 2]
//        [--connections 256] [--header 'name: value']... [--body JSON, {n} = request index]
//        [--timeline FILE: each measured request's scheduled time and latency, ms, tab-separated]
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { Pool } from 'undici';
import { printResult, summarise } from './percentiles.js';

const { values } = parseArgs({
  options: {
    url: { type: 'string' },
    rate: { type: 'string', default: '1000' },
    duration: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '2' },
    connections: { type: 'string', default: '256' },
    header: { type: 'string', multiple: true, default: [] },
    // {n} becomes the request's index, so no two requests are the same.
    body: { type: 'string', default: '{"model":"bench","messages":[{"role":"user","content":"Say hello, request {n}."}]}' },
    'timeout-ms': { type: 'string', default: '10000' },
    timeline: { type: 'string' },
  },
});
if (!values.url) {
  console.error('Usage: constant-rate --url URL --rate N --duration S [--warmup S] [--header "k: v"]... [--body JSON]');
  process.exit(2);
}

const url = new URL(values.url);
const rate = Number(values.rate);
const timeoutMs = Number(values['timeout-ms']);
const warmupCount = Math.round(rate * Number(values.warmup));
const measuredCount = Math.round(rate * Number(values.duration));
const totalCount = warmupCount + measuredCount;
const intervalMs = 1000 / rate;
const headers: Record<string, string> = { 'content-type': 'application/json' };
for (const line of values.header) {
  const colon = line.indexOf(':');
  if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
}
const [bodyHead = '', bodyTail = ''] = values.body.split('{n}');

const pool = new Pool(url.origin, {
  connections: Number(values.connections),
  pipelining: 1,
  keepAliveTimeout: 30_000,
  headersTimeout: timeoutMs,
  bodyTimeout: timeoutMs,
});

const latencies = new Float64Array(measuredCount);
// Answers with another status (a 503 shed, say), timed the same way: how fast a refusal comes back.
const refusedLatencies = new Float64Array(measuredCount);
let refused = 0;
// By request index (NaN: failed), for --timeline: where in the run the slow ones were.
const byIndex = values.timeline ? new Float64Array(measuredCount).fill(Number.NaN) : undefined;
let recorded = 0;
let completed = 0;
let errors = 0;
let non2xx = 0;
let maxSendLagMs = 0;
let sent = 0;
let measureStart = 0;
let measureEnd = 0;

function settle(index: number, scheduledAt: number, ok: boolean, answered = true): void {
  const now = performance.now();
  completed++;
  if (index >= warmupCount) {
    if (ok) latencies[recorded++] = now - scheduledAt;
    else if (answered) refusedLatencies[refused++] = now - scheduledAt;
    if (ok && byIndex) byIndex[index - warmupCount] = now - scheduledAt;
    measureEnd = Math.max(measureEnd, now);
  }
  if (completed === totalCount) finish();
}

function fire(index: number, scheduledAt: number): void {
  const measured = index >= warmupCount;
  if (measured) maxSendLagMs = Math.max(maxSendLagMs, performance.now() - scheduledAt);
  pool
    .request({ method: 'POST', path: url.pathname + url.search, headers, body: bodyHead + index + bodyTail })
    .then(async (res) => {
      await res.body.arrayBuffer();
      const ok = res.statusCode >= 200 && res.statusCode < 300;
      if (!ok && measured) non2xx++;
      settle(index, scheduledAt, ok);
    })
    .catch(() => {
      if (measured) errors++;
      settle(index, scheduledAt, false, false);
    });
}

// A 1 ms timer, not a busy loop: the generator shares its CPU with the fake
// upstream. Requests that fell due since the last tick go out together, each
// still timed from its own scheduled instant.
const start = performance.now() + 20;
measureStart = start + warmupCount * intervalMs;
function tick(): void {
  const due = Math.min(totalCount, Math.floor((performance.now() - start) / intervalMs) + 1);
  while (sent < due) {
    const index = sent++;
    fire(index, start + index * intervalMs);
  }
  if (sent < totalCount) setTimeout(tick, 1);
}
setTimeout(tick, 20);

// Bounded whatever the target does: answers still missing by then are errors.
const deadline = setTimeout(finish, (totalCount * intervalMs) + timeoutMs + 2_000);

let finished = false;
function finish(): void {
  if (finished) return;
  finished = true;
  clearTimeout(deadline);
  const missing = totalCount - completed;
  const measuredMs = Math.max(1, measureEnd - measureStart);
  if (byIndex && values.timeline) {
    // Scheduled time from the start of the measured part, and latency (empty: failed).
    const rows = Array.from(byIndex, (ms, i) => `${(i * intervalMs).toFixed(1)}\t${Number.isNaN(ms) ? '' : ms.toFixed(3)}`);
    const startedAt = new Date(performance.timeOrigin + measureStart).toISOString();
    writeFileSync(values.timeline, `# measured from ${startedAt}\nscheduled_ms\tlatency_ms\n${rows.join('\n')}\n`);
  }
  printResult({
    rate,
    scheduled: measuredCount,
    ok: recorded,
    errors: errors + Math.min(missing, measuredCount),
    non2xx,
    achievedRps: Math.round((recorded / measuredMs) * 1000),
    maxSendLagMs: Number(maxSendLagMs.toFixed(3)),
    ...summarise(latencies, recorded),
    refused: summarise(refusedLatencies, refused),
  });
  // The run is over either way: exit even if closing the pool fails.
  void pool.destroy().finally(() => process.exit(0));
}
