// `lanegate shadow-report <prompt> --since 1d`: what the shadow runs in the
// audit trail say about a candidate version against live: how often they
// agreed, how each did on the eval checks, and what each cost in tokens,
// dollars and time. Reads the file sink's chain files (any lane's chain)
// through the trail's reader (audit/read/reader.ts).
import { createFileReader } from '../audit/read/file-reader.js';
import type { ShadowRunRecord, ShadowRunSide } from './audit-events.js';

const UNITS: Record<string, number> = { m: 60_000, h: 3_600_000, d: 86_400_000, w: 7 * 86_400_000 };

/** `30m`, `12h`, `1d`, `2w`, or a date / ISO time; returns ms since the epoch. */
export function parseSince(text: string, now = Date.now()): number {
  const m = /^(\d+)([mhdw])$/.exec(text.trim());
  if (m) return now - Number(m[1]) * UNITS[m[2]!]!;
  const t = Date.parse(text);
  if (Number.isNaN(t)) throw new Error(`--since takes a duration such as 1d, 12h, 30m or 2w, or a date such as 2026-11-01 (got "${text}")`);
  return t;
}

export interface SideSummary {
  /** Runs that answered. */
  answered: number;
  /** Share of answered runs whose checks all passed (of those with checks). */
  checks_pass_rate: number | null;
  tokens: { total: number; mean: number };
  cost_usd: number;
  latency_ms: { p50: number | null; p95: number | null };
}

export interface ShadowSummary {
  prompt: string;
  live_version: string;
  shadow_version: string;
  runs: number;
  shadow_errors: number;
  /** Runs where both answered. */
  compared: number;
  agreement_rate: number | null;
  live: SideSummary;
  shadow: SideSummary;
  first: string;
  last: string;
}

async function* records(dir: string, since: number): AsyncGenerator<ShadowRunRecord> {
  // Most lines are request records: the reader skips them without parsing.
  for await (const s of createFileReader(dir, { files: 'chains' }).records({ from: since, kinds: ['shadow_run'], holding: '"shadow_run"' })) {
    yield s.record as unknown as ShadowRunRecord;
  }
}

function percentile(sorted: number[], p: number): number | null {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))]!;
}

class SideAccumulator {
  answered = 0;
  withChecks = 0;
  checksPassed = 0;
  tokens = 0;
  cost = 0;
  latencies: number[] = [];
  add(side: ShadowRunSide): void {
    if (side.status < 200 || side.status >= 300 || side.error_code) return;
    this.answered++;
    if (side.checks.length > 0) {
      this.withChecks++;
      if (side.checks.every((c) => c.pass)) this.checksPassed++;
    }
    this.tokens += side.usage?.total_tokens ?? 0;
    this.cost += side.cost_usd ?? 0;
    if (side.latency_ms !== null) this.latencies.push(side.latency_ms);
  }
  summary(): SideSummary {
    const sorted = [...this.latencies].sort((a, b) => a - b);
    return {
      answered: this.answered,
      checks_pass_rate: this.withChecks > 0 ? round(this.checksPassed / this.withChecks) : null,
      tokens: { total: this.tokens, mean: this.answered > 0 ? round(this.tokens / this.answered) : 0 },
      cost_usd: Math.round(this.cost * 1e9) / 1e9,
      latency_ms: { p50: percentile(sorted, 0.5), p95: percentile(sorted, 0.95) },
    };
  }
}

function round(x: number): number {
  return Math.round(x * 10_000) / 10_000;
}

export async function shadowReport(dir: string, prompt: string, since: number): Promise<ShadowSummary[]> {
  const groups = new Map<string, { live: SideAccumulator; shadow: SideAccumulator; runs: number; errors: number; compared: number; agreed: number; first: string; last: string; lv: string; sv: string }>();
  for await (const r of records(dir, since)) {
    if (r.prompt !== prompt) continue;
    const key = `${r.live.version}\u0000${r.shadow.version}`;
    let g = groups.get(key);
    if (!g) groups.set(key, (g = { live: new SideAccumulator(), shadow: new SideAccumulator(), runs: 0, errors: 0, compared: 0, agreed: 0, first: r.time, last: r.time, lv: r.live.version, sv: r.shadow.version }));
    g.runs++;
    if (r.shadow.error_code) g.errors++;
    if (r.agreement !== null) {
      g.compared++;
      if (r.agreement) g.agreed++;
    }
    g.live.add(r.live);
    g.shadow.add(r.shadow);
    if (r.time < g.first) g.first = r.time;
    if (r.time > g.last) g.last = r.time;
  }
  return [...groups.values()].map((g) => ({
    prompt,
    live_version: g.lv,
    shadow_version: g.sv,
    runs: g.runs,
    shadow_errors: g.errors,
    compared: g.compared,
    agreement_rate: g.compared > 0 ? round(g.agreed / g.compared) : null,
    live: g.live.summary(),
    shadow: g.shadow.summary(),
    first: g.first,
    last: g.last,
  }));
}

export function formatShadowReport(prompt: string, since: number, summaries: ShadowSummary[]): string {
  if (summaries.length === 0) return `No shadow runs of ${prompt} since ${new Date(since).toISOString()}.`;
  const pct = (x: number | null) => (x === null ? '-' : `${(x * 100).toFixed(1)}%`);
  const ms = (x: number | null) => (x === null ? '-' : `${x.toFixed(1)} ms`);
  const lines: string[] = [];
  for (const s of summaries) {
    lines.push(`${prompt}: live ${s.live_version} vs shadow ${s.shadow_version}, ${s.runs} runs from ${s.first} to ${s.last}`);
    lines.push(`  agreement        ${pct(s.agreement_rate)} of ${s.compared} compared; shadow errors: ${s.shadow_errors}`);
    const row = (label: string, f: (x: SideSummary) => string) => `  ${label.padEnd(16)} ${f(s.live).padStart(14)}  ${f(s.shadow).padStart(14)}`;
    lines.push(`  ${''.padEnd(16)} ${'live'.padStart(14)}  ${'shadow'.padStart(14)}`);
    lines.push(row('answered', (x) => String(x.answered)));
    lines.push(row('checks passed', (x) => pct(x.checks_pass_rate)));
    lines.push(row('tokens / run', (x) => x.tokens.mean.toFixed(1)));
    lines.push(row('tokens total', (x) => String(x.tokens.total)));
    lines.push(row('cost USD', (x) => x.cost_usd.toFixed(6)));
    lines.push(row('latency p50', (x) => ms(x.latency_ms.p50)));
    lines.push(row('latency p95', (x) => ms(x.latency_ms.p95)));
  }
  return lines.join('\n');
}
