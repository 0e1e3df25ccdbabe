// Eval reports: a table for people, a JSON file for the record. The file's
// sha256 is what promotion audit records point at.
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { CaseResult, EvalReport } from './run.js';
import { sha256Hex } from '../sha256.js';

export function formatCaseLine(r: CaseResult, idWidth: number): string {
  const verdict = r.error ? 'ERROR' : r.pass ? 'pass' : 'FAIL';
  const checks = r.checks.length > 0 ? `${r.checks.filter((c) => c.pass).length}/${r.checks.length}` : '-';
  const tokens = r.usage ? String(r.usage.total_tokens) : '-';
  const why = r.error ? `${r.error.code}: ${r.error.message}` : r.checks.filter((c) => !c.pass).map((c) => `${c.type}: ${c.detail ?? 'failed'}`).join('; ');
  return `${r.id.padEnd(idWidth)}  ${verdict.padEnd(5)}  ${checks.padStart(6)}  ${r.latency_ms.toFixed(1).padStart(9)}  ${tokens.padStart(7)}  ${why}`;
}

export function formatReport(report: EvalReport): string {
  const width = Math.max(4, ...report.cases.map((c) => c.id.length));
  const lines = [`${'case'.padEnd(width)}  ${'result'.padEnd(5)}  ${'checks'.padStart(6)}  ${'ms'.padStart(9)}  ${'tokens'.padStart(7)}  why`];
  for (const c of report.cases) lines.push(formatCaseLine(c, width));
  const s = report.summary;
  lines.push('');
  lines.push(
    `${report.prompt}@${report.version} on ${report.set} (model ${report.model}): ${s.passed}/${s.cases} passed (${(s.pass_rate * 100).toFixed(1)}%), ` +
      `${s.failed} failed, ${s.errored} errored; threshold ${(s.threshold * 100).toFixed(1)}%: gate ${s.gate.toUpperCase()}`,
  );
  lines.push(`tokens ${s.tokens.total} (prompt ${s.tokens.prompt}, completion ${s.tokens.completion}), cost $${s.cost_usd.toFixed(6)}, latency p50 ${s.latency_ms.p50.toFixed(1)} ms, p95 ${s.latency_ms.p95.toFixed(1)} ms`);
  return lines.join('\n');
}

export interface WrittenReport {
  file: string;
  sha256: string;
}

export function reportFileName(report: EvalReport): string {
  const stamp = report.finished_at.replace(/[:.]/g, '-');
  return `${report.prompt}@${report.version}--${report.set}--${stamp}.json`;
}

/** Writes the report (to `out`, or a new file in `dir`) and returns its path and sha256. */
export async function writeReport(report: EvalReport, target: { out?: string; dir: string }): Promise<WrittenReport> {
  const file = path.resolve(target.out ?? path.join(target.dir, reportFileName(report)));
  await mkdir(path.dirname(file), { recursive: true });
  const bytes = `${JSON.stringify(report, null, 2)}\n`;
  await writeFile(file, bytes);
  return { file, sha256: sha256Hex(bytes) };
}

/** The newest passing report of a version in the reports folder, for rollback records. */
export async function latestPassingReport(dir: string, prompt: string, version: string): Promise<WrittenReport | undefined> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return undefined;
  }
  const prefix = `${prompt}@${version}--`;
  // Newest first, by the time stamp that ends each name.
  const stamp = (n: string) => n.slice(n.lastIndexOf('--') + 2);
  const candidates = names.filter((n) => n.startsWith(prefix) && n.endsWith('.json')).sort((a, b) => (stamp(a) < stamp(b) ? 1 : -1));
  for (const name of candidates) {
    const file = path.join(dir, name);
    const bytes = await readFile(file).catch(() => undefined);
    if (!bytes) continue;
    try {
      const report = JSON.parse(bytes.toString('utf8')) as Partial<EvalReport>;
      if (report.summary?.gate === 'pass') return { file, sha256: sha256Hex(bytes) };
    } catch {
      // not a report
    }
  }
  return undefined;
}
