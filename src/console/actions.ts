// What a person does, the same whether through the admin API or the console:
// decide a held call, verify the audit chains, promote or roll back a prompt.
// Each action is recorded in the audit trail with the person's name and role
// (never their key), and each checks its permission itself, so no caller can
// forget to.
import { randomUUID } from 'node:crypto';
import { readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { spoolDir } from '../audit/config.js';
import { verifyDir, type VerifyReport } from '../audit/read/verify.js';
import { AUDIT_RECORD_VERSION } from '../audit/schema.js';
import { requirePermission, type Person } from '../auth/people.js';
import { GatewayError } from '../errors.js';
import { latestPassingReport } from '../evals/report.js';
import type { Approval } from '../policy/approvals.js';
import { writeAuditRecord } from '../prompts/audit-write.js';
import type { PromptPromotionRecord, PromptRollbackRecord } from '../prompts/audit-events.js';
import type { ConfigProblem } from '../config/load.js';
import type { EvalReport } from '../evals/run.js';
import { compilePins } from '../prompts/load.js';
import { PinEditError, promoteInText, rollbackInText, type PinChange } from '../prompts/pins-edit.js';
import type { GatewayState } from '../server/state.js';

export async function decideApproval(state: GatewayState, person: Person, o: { id: string; approve: boolean; reason: string | null; by?: string }): Promise<Approval> {
  requirePermission(person, 'approvals.decide');
  const status = o.approve ? 'approved' : 'rejected';
  // The shared admin key names no one: its caller says who decides (`by`), as before roles.
  const by = o.by ?? person.name;
  const result = await state.services.approvals.decide(o.id, status, by, o.reason);
  if (!result.ok) {
    if (result.reason === 'not_found') throw new GatewayError('not_found', 'No such approval.', { param: 'id' });
    throw new GatewayError('invalid_request', `This approval was already ${result.approval?.status}.`, { status: 409 });
  }
  const a = result.approval;
  state.audit.write({
    v: AUDIT_RECORD_VERSION,
    kind: 'approval_decision',
    id: a.id,
    time: a.decided_at ?? new Date().toISOString(),
    decision: status,
    by: a.decided_by,
    by_role: person.role,
    reason: a.reason,
    request_id: a.request_id,
    key_id: a.key_id,
    app: a.app,
    team: a.team,
    lane: a.lane,
    tool: a.tool,
  });
  return a;
}

export async function verifyAudit(state: GatewayState, person: Person): Promise<VerifyReport> {
  requirePermission(person, 'audit.verify');
  const audit = state.config().audit;
  if (audit.sink !== 'file') throw new GatewayError('invalid_request', `Verify checks the file sink's hash chains; this gateway writes to "${audit.sink}".`);
  const report = await verifyDir(audit.dir, { spoolDir: spoolDir(audit) });
  state.audit.write({
    v: AUDIT_RECORD_VERSION,
    kind: 'audit_verify',
    id: randomUUID(),
    time: new Date().toISOString(),
    by: person.name,
    by_role: person.role,
    ok: report.ok,
    chains: report.chains.length,
    records: report.chains.reduce((n, c) => n + c.records, 0),
    broken: report.chains.filter((c) => c.problem).map((c) => c.chain),
    lost: report.lost.length,
    lane: null,
  });
  return report;
}

export interface PinOutcome {
  prompt: string;
  from: string | null;
  to: string;
  /** Where the record went, or why it could not be written (the pin moved regardless). */
  recorded: { ok: true; where: string } | { ok: false; reason: string };
}

/** Validates the edited pins exactly as a load would, swaps the file in, and reloads. */
async function applyPins(state: GatewayState, before: string, change: PinChange): Promise<void> {
  const config = state.config();
  const catalog = config.prompts;
  const problems: ConfigProblem[] = [];
  compilePins(change.text, catalog.pinsFile, { config: config.raw, templates: catalog.templates, evals: catalog.evals }, problems);
  if (problems.length > 0) throw new GatewayError('invalid_request', `The pins would not load: ${problems.map((p) => p.message).join('; ')}`);
  const now = await readFile(catalog.pinsFile, 'utf8').catch(() => '');
  if (now !== before) throw new GatewayError('invalid_request', 'The pins file changed meanwhile; look again and retry.', { status: 409 });
  const temp = path.join(path.dirname(catalog.pinsFile), `.${path.basename(catalog.pinsFile)}.${process.pid}.tmp`);
  await writeFile(temp, change.text);
  await rename(temp, catalog.pinsFile);
  const reloaded = await state.reload();
  if (!reloaded.ok) throw new GatewayError('invalid_config', `The pins file was written but the config did not reload: ${reloaded.problems}`);
}

function catalogOf(state: GatewayState) {
  const catalog = state.config().prompts;
  if (!catalog.enabled) throw new GatewayError('not_found', 'This gateway has no prompt templates (prompts.dir).');
  return catalog;
}

async function pinsText(file: string): Promise<string> {
  return readFile(file, 'utf8').catch(() => '');
}

function pinEdit<T>(edit: () => T): T {
  try {
    return edit();
  } catch (err) {
    if (err instanceof PinEditError) throw new GatewayError('invalid_request', err.message);
    throw err;
  }
}

/**
 * Pins `version` live, only when the reports folder holds a passing eval
 * report of it (run `lanegate promote` or `lanegate eval` to make one): the
 * console does not run evals itself, it checks that the gate passed.
 */
export async function promotePrompt(state: GatewayState, person: Person, o: { prompt: string; version: string; note: string | null }): Promise<PinOutcome> {
  requirePermission(person, 'prompts.change');
  const catalog = catalogOf(state);
  if (!catalog.templates.get(o.prompt)?.has(o.version)) throw new GatewayError('not_found', `No prompt template ${o.prompt}@${o.version}.`);
  const current = catalog.pins.get(o.prompt)?.base.live ?? null;
  if (current === o.version) throw new GatewayError('invalid_request', `${o.prompt} is already pinned to ${o.version}.`, { status: 409 });
  const report = await latestPassingReport(catalog.reportsDir, o.prompt, o.version);
  if (!report) {
    throw new GatewayError('invalid_request', `No passing eval report for ${o.prompt}@${o.version}: the eval gate has not passed. Run \`lanegate promote ${o.prompt} ${o.version}\` (it runs the gate).`);
  }
  const gate = JSON.parse(await readFile(report.file, 'utf8')) as EvalReport;
  const before = await pinsText(catalog.pinsFile);
  const change = pinEdit(() => promoteInText(before, o.prompt, o.version));
  await applyPins(state, before, change);
  const entry: PromptPromotionRecord = {
    v: AUDIT_RECORD_VERSION,
    kind: 'prompt_promotion',
    id: randomUUID(),
    time: new Date().toISOString(),
    prompt: o.prompt,
    pin_app: null,
    from: current,
    to: o.version,
    applied: true,
    pins_file: catalog.pinsFile,
    by: person.name,
    by_role: person.role,
    note: o.note,
    gate: { set: gate.set, threshold: gate.summary.threshold, pass_rate: gate.summary.pass_rate, passed: true, report_sha256: report.sha256, report_file: report.file },
    lane: null,
  };
  return { prompt: o.prompt, from: current, to: o.version, recorded: await writeAuditRecord(state.config().raw, entry) };
}

export async function rollbackPrompt(state: GatewayState, person: Person, o: { prompt: string; note: string | null }): Promise<PinOutcome> {
  requirePermission(person, 'prompts.change');
  const catalog = catalogOf(state);
  const before = await pinsText(catalog.pinsFile);
  const change = pinEdit(() => rollbackInText(before, o.prompt));
  await applyPins(state, before, change);
  const report = await latestPassingReport(catalog.reportsDir, o.prompt, change.to);
  const entry: PromptRollbackRecord = {
    v: AUDIT_RECORD_VERSION,
    kind: 'prompt_rollback',
    id: randomUUID(),
    time: new Date().toISOString(),
    prompt: o.prompt,
    pin_app: null,
    from: change.from!,
    to: change.to,
    pins_file: catalog.pinsFile,
    by: person.name,
    by_role: person.role,
    note: o.note,
    report_sha256: report?.sha256 ?? null,
    lane: null,
  };
  return { prompt: o.prompt, from: change.from, to: change.to, recorded: await writeAuditRecord(state.config().raw, entry) };
}
