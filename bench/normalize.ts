// Micro-benchmark of the text normalisation detectors read through
// (src/policy/detectors/normalize.ts): µs per KB of normalizeText alone, and
// of the lane scan (all six built-ins) before and after it, i.e. the
// detectors on the raw text versus scanSlots (normalise once, scan, map the
// findings back). Median CPU time of many runs after warm-up (CPU, not wall time, so other
// processes on the machine do not inflate it); about 10 s of CPU.
//
//   node --import tsx bench/normalize.ts
import type { LaneDetector } from '../src/policy/compile.js';
import { BUILTIN_DETECTOR_NAMES, BUILTIN_DETECTORS, normalizeText, type Finding } from '../src/policy/detectors.js';
import { scanSlots, type TextSlot } from '../src/policy/scan.js';

const PROSE = [
  'Please summarise the meeting notes below and list the action items for each participant, grouped by team. ',
  'On 2024-03-14 the group reviewed the Q1 roadmap; revenue grew 12.5% to $4.2M and churn fell to 3 percent. ',
  'If anything is unclear, write to jane.doe@example.com or call her on +44 20 7946 0958 before Friday noon. ',
  'Support asked for a clearer refund policy. Escalations go to ops@example.org or (415) 555-2671 after 6 pm. ',
].join('');

function fill(unit: string, size: number): string {
  return unit.repeat(Math.ceil(size / unit.length)).slice(0, size);
}

/** ASCII letters, digits and punctuation to their full-width forms (U+FF01-FF5E), spaces to U+3000. */
function fullWidth(text: string): string {
  return text.replace(/[!-~ ]/g, (c) => (c === ' ' ? '\u3000' : String.fromCharCode(c.charCodeAt(0) + 0xfee0)));
}

const KB = 1024;
const SIZE = 16 * KB;
const TEXTS: Record<string, string> = {
  'ASCII prose': fill(PROSE, SIZE),
  'prose, a zero-width space every 4 chars': fill(PROSE.replace(/(.{4})/g, '$1\u200b'), SIZE),
  'full-width prose': fill(fullWidth(PROSE), SIZE),
  'Japanese prose': fill('会議のメモを要約し、各参加者のアクション項目をチームごとに一覧にしてください。連絡先は jane.doe@example.com です。', SIZE),
  'Hindi prose (combining marks)': fill('कृपया नीचे दी गई बैठक की टिप्पणियों का सारांश दें और प्रत्येक प्रतिभागी के कार्य सूचीबद्ध करें। ', SIZE),
};

function median(samples: number[]): number {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
}

/** CPU µs (user + system) so far: on a shared machine, wall time counts other processes' turns too. */
function cpu(): number {
  const u = process.cpuUsage();
  return u.user + u.system;
}

/** Median CPU µs of one call of `fn`, timed in batches. */
function measure(fn: () => void, batch: number, runs: number): number {
  for (let i = 0; i < batch * 10; i++) fn();
  const samples: number[] = [];
  for (let r = 0; r < runs; r++) {
    const t0 = cpu();
    for (let i = 0; i < batch; i++) fn();
    samples.push((cpu() - t0) / batch);
  }
  return median(samples);
}

// The class tables are built page by page on first use: the first call of a process pays for the pages its text needs.
for (const [label, text] of Object.entries(TEXTS)) {
  const t0 = cpu();
  normalizeText(text);
  const cold = cpu() - t0;
  if (label !== 'ASCII prose') console.log(`first call on ${label}: ${cold.toFixed(0)} µs (builds its pages)`);
}

const detectors: LaneDetector[] = BUILTIN_DETECTOR_NAMES.map((name) => ({ detector: BUILTIN_DETECTORS[name], action: 'redact' }));
const out: Finding[] = [];
const rows: Record<string, Record<string, string>> = {};
for (const [label, text] of Object.entries(TEXTS)) {
  const kb = text.length / KB;
  const normalize = measure(() => normalizeText(text), 20, 51) / kb;
  // scanSlots as it was before normalisation: the detectors on the raw text.
  const before = measure(() => {
    const findings: Array<Finding & { rule: LaneDetector }> = [];
    for (const rule of detectors) {
      out.length = 0;
      rule.detector.scan(text, out);
      for (const f of out) findings.push({ ...f, rule });
    }
  }, 20, 51) / kb;
  const slot: TextSlot = { param: 'x', text, set: () => undefined };
  const after = measure(() => scanSlots([slot], detectors), 20, 51) / kb;
  rows[label] = {
    'normalise µs/KB': normalize.toFixed(2),
    'scan before µs/KB': before.toFixed(2),
    'scan after µs/KB': after.toFixed(2),
    'rewritten': String(!normalizeText(text).identity),
  };
}
console.log(`\n${SIZE / KB} KB texts, all six built-in detectors:`);
console.table(rows);
