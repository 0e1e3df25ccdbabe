// The prompts page's data: each prompt's versions, pin and history from the
// loaded catalog, and the eval reports in the reports folder (the gate a
// promotion from the console requires).
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import type { EvalReport } from '../evals/run.js';
import { sortVersions, type PromptCatalog } from '../prompts/catalog.js';

export interface ReportSummary {
  version: string;
  set: string;
  finished_at: string;
  gate: 'pass' | 'fail';
  pass_rate: number;
  threshold: number;
  file: string;
}

export interface PromptView {
  name: string;
  versions: Array<{ version: string; model: string | null; description: string | null }>;
  live: string | null;
  canary: { version: string; weight: number } | null;
  history: string[];
  evalSet: string | null;
  reports: ReportSummary[];
}

const REPORTS_SHOWN = 20;

async function reportsOf(dir: string, prompt: string): Promise<ReportSummary[]> {
  const names = (await readdir(dir).catch(() => [] as string[])).filter((n) => n.startsWith(`${prompt}@`) && n.endsWith('.json'));
  const stamp = (n: string) => n.slice(n.lastIndexOf('--') + 2);
  const newest = names.sort((a, b) => (stamp(a) < stamp(b) ? 1 : -1)).slice(0, REPORTS_SHOWN);
  const out: ReportSummary[] = [];
  for (const name of newest) {
    try {
      const r = JSON.parse(await readFile(path.join(dir, name), 'utf8')) as EvalReport;
      if (r.prompt !== prompt) continue;
      out.push({ version: r.version, set: r.set, finished_at: r.finished_at, gate: r.summary.gate, pass_rate: r.summary.pass_rate, threshold: r.summary.threshold, file: name });
    } catch {
      // not a report
    }
  }
  return out;
}

export async function promptViews(catalog: PromptCatalog): Promise<PromptView[]> {
  const names = [...new Set([...catalog.templates.keys(), ...catalog.pins.keys()])].sort();
  return Promise.all(
    names.map(async (name) => {
      const versions = catalog.templates.get(name) ?? new Map();
      const pin = catalog.pins.get(name);
      return {
        name,
        versions: sortVersions(versions.keys()).map((v) => {
          const t = versions.get(v)!;
          return { version: v, model: t.model ?? null, description: t.description ?? null };
        }),
        live: pin?.base.live ?? null,
        canary: pin?.base.canary ?? null,
        history: pin?.history ?? [],
        evalSet: pin?.evalSet ?? null,
        reports: await reportsOf(catalog.reportsDir, name),
      };
    }),
  );
}

/** A version may be promoted from the console when a report of it passed the gate (promotePrompt checks the same). */
export function gatePassed(view: PromptView, version: string): boolean {
  return view.reports.some((r) => r.version === version && r.gate === 'pass');
}
