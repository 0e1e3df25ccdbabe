// Custom detector patterns on RE2 (re2js, what the gateway runs) against V8's
// experimental linear-time engine (the `l` flag, what it ran before): median
// µs of a full scan for all matches, on prose with a few matches. The V8 flag
// is set in this process only, to compare.
//
//   node --import tsx bench/custom-regex.ts
import v8 from 'node:v8';
import { createRegexDetector, type Finding } from '../src/policy/detectors.js';

v8.setFlagsFromString('--enable-experimental-regexp-engine');

const sentence = 'The design team shared three mock-ups; version 2 tested best with 18 of the 25 customers we interviewed. ';
function prompt(size: number): string {
  let text = '';
  for (let i = 0; text.length < size; i++) text += i % 40 === 7 ? `Ticket for EMP-${100000 + i} and AB-${200000 + i}. ` : sentence;
  return text.slice(0, size);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1]!;
}

function measure(fn: () => void, batch: number, runs: number): number {
  for (let i = 0; i < batch * 5; i++) fn();
  const samples: number[] = [];
  for (let r = 0; r < runs; r++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < batch; i++) fn();
    samples.push(Number(process.hrtime.bigint() - t0) / 1000 / batch);
  }
  return median(samples);
}

/** All matches with V8's linear engine, no windows (the cheapest it could do). */
function v8Scan(re: RegExp, text: string, out: Finding[]): void {
  re.lastIndex = 0;
  for (let m = re.exec(text); m !== null; m = re.exec(text)) out.push({ detector: 'v8', start: m.index, end: m.index + m[0].length });
}

for (const [label, size, batch] of [['1 KB', 1024, 500], ['100 KB', 100 * 1024, 5]] as const) {
  const text = prompt(size);
  const rows: Record<string, { re2js: string; v8_linear: string }> = {};
  for (const [pattern, flags] of [['EMP-[0-9]{6}', ''], ['[A-Z]{2,3}-[0-9]{6}', ''], ['\\b(?:[Ee][Mm][Pp]|[Aa][Bb])-[0-9]+', ''], ['[a-z0-9.]+@[a-z]+\\.[a-z]+', '']] as const) {
    const detector = createRegexDetector('custom', pattern, flags);
    const linear = new RegExp(pattern, `g${flags}l`);
    const out: Finding[] = [];
    const re2 = measure(() => {
      out.length = 0;
      detector.scan(text, out);
    }, batch, 31);
    const found = out.length;
    const v8us = measure(() => {
      out.length = 0;
      v8Scan(linear, text, out);
    }, batch, 31);
    rows[`/${pattern}/${flags}`] = { re2js: `${re2.toFixed(1)} µs (${found})`, v8_linear: `${v8us.toFixed(1)} µs (${out.length})` };
  }
  console.log(`\n${label} prompt`);
  console.table(rows);
}
