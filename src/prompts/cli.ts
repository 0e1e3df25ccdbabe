// `lanegate promote`, `lanegate rollback` and `lanegate shadow-report`: thin
// commands over the eval runner, the pins editor and the shadow report.
//
// promote runs the eval gate first and only then rewrites the pin; both
// commands validate the edited pins file exactly as a (re)load would before
// writing it (atomically: a temp file renamed over it), and both write an
// audit record. A running gateway sees the new file and swaps it in on its
// next reload (file watching, SIGHUP or POST /admin/reload).
import { randomUUID } from 'node:crypto';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { userInfo } from 'node:os';
import path from 'node:path';
import { AUDIT_RECORD_VERSION, type AuditEntry } from '../audit/schema.js';
import { ConfigError, resolveConfigPath, type ConfigProblem } from '../config/load.js';
import { flagValue, positionals, resolveSet, resolveTarget, runGate, UsageError } from '../evals/cli.js';
import { openInProcess, type InProcessGateway } from '../evals/in-process.js';
import { latestPassingReport } from '../evals/report.js';
import { writeAuditRecord } from './audit-write.js';
import type { PromptPromotionRecord, PromptRollbackRecord } from './audit-events.js';
import { compilePins } from './load.js';
import { PinEditError, promoteInText, rollbackInText, type PinChange } from './pins-edit.js';
import { formatShadowReport, parseSince, shadowReport } from './shadow-report.js';

export const PROMPTS_USAGE = `  promote <prompt> <version> [--set [<name>@]<version>] [--by NAME] [--note TEXT] [--out FILE] [--config PATH]
                                 run the eval gate; only if it passes, pin <version> live
                                 (the previous version goes to the pin's history)
  rollback <prompt> [--by NAME] [--note TEXT] [--config PATH]
                                 pin the previous version again (the last in history)
  shadow-report <prompt> [--since 1d] [--dir DIR] [--json] [--config PATH]
                                 agreement, checks, tokens, cost and latency of shadow
                                 runs against live, from the audit files`;

function who(argv: string[]): string | null {
  const by = flagValue(argv, '--by');
  if (by) return by;
  try {
    return userInfo().username;
  } catch {
    return null;
  }
}

/** Validates the edited pins against the loaded templates and config, then swaps the file in. */
async function writePins(gw: InProcessGateway, before: string, change: PinChange): Promise<void> {
  const catalog = gw.config.prompts;
  const file = catalog.pinsFile;
  const problems: ConfigProblem[] = [];
  compilePins(change.text, file, { config: gw.loaded.config, templates: catalog.templates, evals: catalog.evals }, problems);
  if (problems.length > 0) throw new ConfigError(problems);
  // Someone else saved the file meanwhile: do not overwrite their edit.
  const now = await readFile(file, 'utf8').catch(() => '');
  if (now !== before) throw new UsageError(`${file} changed while this command ran; run it again`);
  const temp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
  await writeFile(temp, change.text);
  await rename(temp, file);
}

async function record(gw: InProcessGateway, entry: AuditEntry): Promise<boolean> {
  const result = await writeAuditRecord(gw.loaded.config, entry);
  if (result.ok) {
    console.log(`audit: ${entry.kind} ${entry.id} written (${result.where})`);
    return true;
  }
  console.error(`audit: the ${entry.kind} record could not be written: ${result.reason}`);
  return false;
}

async function withGateway(argv: string[], run: (gw: InProcessGateway) => Promise<number>): Promise<number> {
  let gw: InProcessGateway | undefined;
  try {
    gw = await openInProcess(resolveConfigPath(argv, process.env));
    if (!gw.config.prompts.enabled) throw new UsageError('this config has no prompt templates (set prompts.dir)');
    return await run(gw);
  } catch (err) {
    if (err instanceof ConfigError || err instanceof UsageError || err instanceof PinEditError) {
      console.error(err.message);
      return err instanceof ConfigError ? 1 : 2;
    }
    throw err;
  } finally {
    await gw?.close();
  }
}

export async function promoteCommand(argv: string[]): Promise<number> {
  const [prompt, version] = positionals(argv, ['--set', '--by', '--note', '--out', '--config']);
  if (!prompt || !version) {
    console.error(`Usage:\n${PROMPTS_USAGE}`);
    return 2;
  }
  return withGateway(argv, async (gw) => {
    const catalog = gw.config.prompts;
    const target = resolveTarget(catalog, `${prompt}@${version}`);
    const current = catalog.pins.get(prompt)?.base.live ?? null;
    if (current === version) {
      console.log(`${prompt} is already pinned to ${version}; nothing to do.`);
      return 0;
    }
    const set = resolveSet(catalog, prompt, flagValue(argv, '--set'));
    const before = await readFile(catalog.pinsFile, 'utf8').catch(() => '');
    const out = flagValue(argv, '--out');
    const { report, written } = await runGate(gw, target, set, { ...(out ? { out } : {}), log: (l) => console.log(l), progress: (l) => console.error(l) });
    const passed = report.summary.gate === 'pass';
    let change: PinChange | undefined;
    if (passed) {
      change = promoteInText(before, prompt, version);
      await writePins(gw, before, change);
    }
    const entry: PromptPromotionRecord = {
      v: AUDIT_RECORD_VERSION,
      kind: 'prompt_promotion',
      id: randomUUID(),
      time: new Date().toISOString(),
      prompt,
      pin_app: null,
      from: current,
      to: version,
      applied: passed,
      pins_file: catalog.pinsFile,
      by: who(argv),
      note: flagValue(argv, '--note') ?? null,
      gate: { set: `${set.name}@${set.version}`, threshold: set.threshold, pass_rate: report.summary.pass_rate, passed, report_sha256: written.sha256, report_file: written.file },
      lane: null,
    };
    const recorded = await record(gw, entry);
    if (!passed) {
      console.error(`Gate failed: ${prompt} stays on ${current ?? '(unpinned)'}.`);
      return 1;
    }
    console.log(`${prompt}: ${current ?? '(unpinned)'} -> ${version} in ${catalog.pinsFile}${change!.notes.length > 0 ? ` (${change!.notes.join('; ')})` : ''}`);
    console.log('A gateway watching its config picks this up on its own; otherwise send it SIGHUP or POST /admin/reload.');
    return recorded ? 0 : 3;
  });
}

export async function rollbackCommand(argv: string[]): Promise<number> {
  const [prompt] = positionals(argv, ['--by', '--note', '--config']);
  if (!prompt) {
    console.error(`Usage:\n${PROMPTS_USAGE}`);
    return 2;
  }
  return withGateway(argv, async (gw) => {
    const catalog = gw.config.prompts;
    const before = await readFile(catalog.pinsFile, 'utf8').catch(() => '');
    const change = rollbackInText(before, prompt);
    await writePins(gw, before, change);
    const report = await latestPassingReport(catalog.reportsDir, prompt, change.to);
    const entry: PromptRollbackRecord = {
      v: AUDIT_RECORD_VERSION,
      kind: 'prompt_rollback',
      id: randomUUID(),
      time: new Date().toISOString(),
      prompt,
      pin_app: null,
      from: change.from!,
      to: change.to,
      pins_file: catalog.pinsFile,
      by: who(argv),
      note: flagValue(argv, '--note') ?? null,
      report_sha256: report?.sha256 ?? null,
      lane: null,
    };
    console.log(`${prompt}: ${change.from} -> ${change.to} in ${catalog.pinsFile}${change.notes.length > 0 ? ` (${change.notes.join('; ')})` : ''}`);
    console.log('A gateway watching its config picks this up on its own; otherwise send it SIGHUP or POST /admin/reload.');
    return (await record(gw, entry)) ? 0 : 3;
  });
}

export async function shadowReportCommand(argv: string[]): Promise<number> {
  const [prompt] = positionals(argv, ['--since', '--dir', '--config']);
  if (!prompt) {
    console.error(`Usage:\n${PROMPTS_USAGE}`);
    return 2;
  }
  let since: number;
  try {
    since = parseSince(flagValue(argv, '--since') ?? '1d');
  } catch (err) {
    console.error((err as Error).message);
    return 2;
  }
  let dir = flagValue(argv, '--dir');
  if (!dir) {
    try {
      const gw = await openInProcess(resolveConfigPath(argv, process.env));
      await gw.close();
      if (gw.loaded.config.audit.sink !== 'file') {
        console.error(`shadow-report reads the file sink's folder; this config writes to "${gw.loaded.config.audit.sink}". Name a folder with --dir.`);
        return 2;
      }
      dir = gw.loaded.config.audit.dir;
    } catch (err) {
      if (err instanceof ConfigError) {
        console.error(`${err.message}\n(or name the audit folder with --dir)`);
        return 1;
      }
      throw err;
    }
  }
  const summaries = await shadowReport(dir, prompt, since);
  if (argv.includes('--json')) console.log(JSON.stringify({ object: 'shadow.report', prompt, since: new Date(since).toISOString(), dir, data: summaries }, null, 2));
  else console.log(formatShadowReport(prompt, since, summaries));
  return 0;
}
