// `lanegate eval <prompt>[@<version>] [--set <name>@<version>]`: runs an eval
// set against a prompt version through the gateway's pipeline in this
// process, prints a table and a summary, writes the JSON report and exits 1
// when the pass rate is below the set's threshold.
import { ConfigError, resolveConfigPath } from '../config/load.js';
import { internalChatPipeline } from '../pipeline/index.js';
import { defaultEvalSet, sortVersions, type PromptCatalog } from '../prompts/catalog.js';
import { openInProcess, type InProcessGateway } from './in-process.js';
import type { EvalSet } from './load.js';
import { formatReport, writeReport, type WrittenReport } from './report.js';
import { runEval, type EvalReport } from './run.js';
import type { AuditRequestRecord } from '../audit/schema.js';
import { writeAuditRecords } from '../prompts/audit-write.js';

export const EVAL_USAGE = `  eval <prompt>[@<version>] [--set [<name>@]<version>] [--out FILE] [--concurrency N] [--config PATH]
                                 run an eval set against a prompt version (default: the
                                 pinned one) through the pipeline in this process; writes a
                                 JSON report; exits 1 below the set's threshold`;

export function flagValue(argv: string[], flag: string): string | undefined {
  const i = argv.indexOf(flag);
  return i >= 0 ? argv[i + 1] : undefined;
}

/** Positional arguments: everything that is neither a flag nor a flag's value. */
export function positionals(argv: string[], flagsWithValues: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (flagsWithValues.includes(a)) i++;
    else if (!a.startsWith('--')) out.push(a);
  }
  return out;
}

export class UsageError extends Error {
  override name = 'UsageError';
}

/** `triage@v13`, or `triage` for the version pinned live. */
export function resolveTarget(catalog: PromptCatalog, text: string): { prompt: string; version: string } {
  const [prompt = '', version] = text.split('@', 2);
  const versions = catalog.templates.get(prompt);
  if (!versions) throw new UsageError(`no prompt template "${prompt}" (templates: ${[...catalog.templates.keys()].join(', ') || 'none'})`);
  const v = version ?? catalog.pins.get(prompt)?.base.live;
  if (!v) throw new UsageError(`${prompt} is not pinned; name a version: ${prompt}@<version> (versions: ${sortVersions(versions.keys()).join(', ')})`);
  if (!versions.has(v)) throw new UsageError(`${prompt} has no version ${v} (versions: ${sortVersions(versions.keys()).join(', ')})`);
  return { prompt, version: v };
}

/** `--set triage@v3`, `--set v3` (the prompt's own sets), or the pin's eval_set, or the newest. */
export function resolveSet(catalog: PromptCatalog, prompt: string, spec: string | undefined): EvalSet {
  if (!spec) {
    const set = defaultEvalSet(catalog, prompt);
    if (!set) throw new UsageError(`no eval set for ${prompt} in ${catalog.evalsDir || 'the evals folder'} (write ${prompt}/v1.yaml, or name one with --set)`);
    return set;
  }
  const [name, version] = spec.includes('@') ? (spec.split('@', 2) as [string, string]) : [prompt, spec];
  const set = catalog.evals.get(name)?.get(version);
  if (!set) throw new UsageError(`no eval set ${name}@${version} (sets of ${name}: ${sortVersions(catalog.evals.get(name)?.keys() ?? []).join(', ') || 'none'})`);
  return set;
}

export interface GateOutcome {
  report: EvalReport;
  written: WrittenReport;
}

/** Runs the set, printing each case as it finishes, then the summary; writes the report. */
export async function runGate(
  gw: InProcessGateway,
  target: { prompt: string; version: string },
  set: EvalSet,
  o: { out?: string; concurrency?: number; log: (line: string) => void; progress?: (line: string) => void },
): Promise<GateOutcome> {
  const progress = o.progress ?? (() => {});
  if (set.cases.length < 10 || set.cases.length > 30) progress(`note: ${set.name}@${set.version} has ${set.cases.length} cases; 10 to 30 is the usual size`);
  progress(`running ${set.name}@${set.version} (${set.cases.length} cases) against ${target.prompt}@${target.version}...`);
  let done = 0;
  const records: AuditRequestRecord[] = [];
  const report = await runEval({
    records,
    config: gw.config,
    services: gw.services,
    stages: internalChatPipeline,
    prompt: target.prompt,
    version: target.version,
    set,
    ...(o.concurrency ? { concurrency: o.concurrency } : {}),
    onCase: (r) => progress(`  [${++done}/${set.cases.length}] ${r.id}: ${r.error ? 'error' : r.pass ? 'pass' : 'FAIL'}`),
  });
  // Eval calls spend real money: each is a request record (key, app and team _eval), in costs like any other.
  if (records.length > 0 && gw.loaded.config.audit.sink !== 'off') {
    const kept = await writeAuditRecords(gw.loaded.config, records);
    progress(kept.ok ? `audit: ${records.length} request records written to the _eval chain (${kept.where})` : `audit: the eval's request records could not be written: ${kept.reason}`);
  }
  o.log(formatReport(report));
  const written = await writeReport(report, { ...(o.out ? { out: o.out } : {}), dir: gw.config.prompts.reportsDir });
  o.log(`report: ${written.file} (sha256 ${written.sha256})`);
  return { report, written };
}

export async function evalCommand(argv: string[]): Promise<number> {
  const [targetText] = positionals(argv, ['--set', '--out', '--concurrency', '--config']);
  if (!targetText) {
    console.error(`Usage:\n${EVAL_USAGE}`);
    return 2;
  }
  const concurrency = flagValue(argv, '--concurrency');
  if (concurrency !== undefined && !(Number(concurrency) >= 1)) {
    console.error('--concurrency takes a number of at least 1');
    return 2;
  }
  let gw: InProcessGateway | undefined;
  try {
    gw = await openInProcess(resolveConfigPath(argv, process.env));
    const target = resolveTarget(gw.config.prompts, targetText);
    const set = resolveSet(gw.config.prompts, target.prompt, flagValue(argv, '--set'));
    const out = flagValue(argv, '--out');
    const { report } = await runGate(gw, target, set, { ...(out ? { out } : {}), ...(concurrency ? { concurrency: Number(concurrency) } : {}), log: (l) => console.log(l), progress: (l) => console.error(l) });
    return report.summary.gate === 'pass' ? 0 : 1;
  } catch (err) {
    if (err instanceof ConfigError || err instanceof UsageError) {
      console.error(err.message);
      return 2;
    }
    throw err;
  } finally {
    await gw?.close();
  }
}
