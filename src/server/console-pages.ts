// The console's read-mostly pages: audit, spend, prompts, health (approvals
// and sign-in are in console.ts). Each reads what the admin API reads, through
// the same modules, so the two never disagree.
import type { HttpBindings } from '@hono/node-server';
import type { Hono } from 'hono';
import { parseAuditFilter, AUDIT_FILTER_NAMES } from '../audit/read/filter.js';
import { integrityCounts } from '../audit/read/integrity.js';
import { can } from '../auth/people.js';
import { ledgerSource, toCsv, usageReport } from '../budget/ledger.js';
import { budgetStatus } from '../budget/status.js';
import { isUsageGroup, parseUsageBound } from '../budget/usage-query.js';
import { createUsageRollups, type UsageRollups } from '../budget/usage-rollup.js';
import { promotePrompt, rollbackPrompt, verifyAudit } from '../console/actions.js';
import { healthView } from '../console/health.js';
import { promptViews } from '../console/prompts.js';
import { AuditPage, AuditRecordPage, VerifyPage, VerifyRunningPage } from '../console/views/audit.js';
import type { VerifyReport } from '../audit/read/verify.js';
import { HealthPage } from '../console/views/health.js';
import { ConfirmPinPage, PromptsPage } from '../console/views/prompts.js';
import { SpendPage, type BudgetRow } from '../console/views/spend.js';
import { GatewayError, toGatewayError } from '../errors.js';
import { visibleRecord } from './audit.js';
import type { ConsoleKit } from './console.js';
import type { GatewayState } from './state.js';

type Env = { Bindings: HttpBindings };

const DATE = /^\d{4}-\d{2}-\d{2}$/;
const DAY_MS = 86_400_000;

/** The spend range as dates (YYYY-MM-DD, `to` inclusive), read exactly as `lanegate costs --from --to` reads them. */
function spendRange(fromRaw: string | undefined, toRaw: string | undefined): { from: string; to: string; fromMs: number; toMs: number } {
  const today = new Date().toISOString().slice(0, 10);
  const to = toRaw && DATE.test(toRaw) ? toRaw : today;
  const from = fromRaw && DATE.test(fromRaw) ? fromRaw : new Date(Date.parse(to) - 29 * DAY_MS).toISOString().slice(0, 10);
  const fromMs = parseUsageBound(from, { end: false });
  const toMs = parseUsageBound(to, { end: true });
  if (Number.isNaN(fromMs) || Number.isNaN(toMs)) throw new GatewayError('invalid_request', 'From and To take dates such as 2026-11-01.');
  return { from, to, fromMs, toMs };
}

export function mountConsolePages(app: Hono<Env>, state: GatewayState, kit: ConsoleKit): void {
  const auditQuery = () => {
    const q = state.audit.query;
    if (!q) throw new GatewayError('not_found', 'The audit trail is off (audit.sink: off): there is nothing to read.');
    return q;
  };

  app.get(
    '/console/audit',
    kit.page('audit.read', async (c, who) => {
      const query: Record<string, string> = {};
      for (const name of AUDIT_FILTER_NAMES) {
        const v = c.req.query(name);
        if (v && name !== 'after') query[name] = v;
      }
      const canVerify = can(who.person, 'audit.verify');
      let error: string | undefined;
      let page: { data: Array<Record<string, unknown>>; next?: string | undefined } = { data: [] };
      try {
        // Newest first unless asked otherwise: a page is read from the newest files and the search stops there.
        page = await auditQuery().list(parseAuditFilter((name) => (name === 'order' ? (c.req.query('order') ?? 'newest') : c.req.query(name))));
      } catch (err) {
        if (!(err instanceof GatewayError) || err.code === 'internal_error') throw err;
        error = err.message;
      }
      const records = page.data.map((r) => visibleRecord(state, r));
      return c.html(AuditPage({ frame: who.frame, query, records, integrity: integrityCounts(page.data), next: page.next, canVerify, error }));
    }),
  );
  app.get(
    '/console/audit/record/:id',
    kit.page('audit.read', async (c, who) => {
      // The list links each record with its time (`t`), so only the files that can hold it are read first.
      const t = Number(c.req.query('t'));
      const record = await auditQuery().get(c.req.param('id') ?? '', Number.isFinite(t) && t > 0 ? { time: t } : {});
      if (!record) throw new GatewayError('not_found', "No audit record with this id (it may have expired under its lane's retention).");
      return c.html(AuditRecordPage({ frame: who.frame, record: visibleRecord(state, record) }));
    }),
  );
  // Verify reads every record of every chain: minutes on a large trail. The
  // console runs it in the background, one at a time, and its page shows it
  // running until the report is there (a short one answers at once).
  let verifying: { by: string; startedAt: string; done: Promise<void>; report?: VerifyReport; error?: string } | undefined;
  app.post(
    '/console/audit/verify',
    kit.action('audit.verify', async (c, who) => {
      if (!verifying || verifying.report || verifying.error) {
        const job: NonNullable<typeof verifying> = { by: who.person.name, startedAt: new Date().toISOString(), done: Promise.resolve() };
        job.done = verifyAudit(state, who.person).then(
          (report) => void (job.report = report),
          (err: unknown) => {
            const e = toGatewayError(err);
            if (e.code === 'internal_error') state.logger.error({ err }, 'console verify failed');
            job.error = e.message;
          },
        );
        verifying = job;
      }
      await Promise.race([verifying.done, new Promise((r) => setTimeout(r, 1_000).unref())]);
      return c.redirect('/console/audit/verify', 303);
    }),
  );
  app.get(
    '/console/audit/verify',
    kit.page('audit.verify', (c, who) => {
      const job = verifying;
      if (!job) return c.redirect('/console/audit', 303);
      if (job.error) throw new GatewayError('invalid_request', job.error);
      if (!job.report) return c.html(VerifyRunningPage({ frame: who.frame, by: job.by, startedAt: job.startedAt }));
      return c.html(VerifyPage({ frame: who.frame, report: job.report }));
    }),
  );

  // Spend over the file sink's folder comes from rollups (budget/usage-rollup.ts): each
  // file read once, then only what is appended; a report sums whole days.
  const rollupsByDir = new Map<string, UsageRollups>();
  const rollupsOf = (): UsageRollups | undefined => {
    const audit = state.config().audit;
    if (audit.sink === 'redis' && state.services.redis) return undefined;
    let r = rollupsByDir.get(audit.dir);
    if (!r) rollupsByDir.set(audit.dir, (r = createUsageRollups(audit.dir, { running: () => !state.shuttingDown })));
    return r;
  };
  if (state.config().console.enabled) {
    // Built in the background soon after start, so the first spend page does not read the trail.
    const timer = setTimeout(() => {
      if (state.shuttingDown) return;
      const rollups = rollupsOf();
      if (!rollups) return;
      const started = Date.now();
      rollups.warm().then(
        () => state.logger.info({ ms: Date.now() - started }, 'console spend rollups ready'),
        (err: unknown) => {
          if (!state.shuttingDown) state.logger.warn({ err: String(err) }, 'console spend rollups could not be built; the spend page reads them when asked');
        },
      );
    }, 2_000);
    timer.unref();
  }
  const spend = async (fromRaw: string | undefined, toRaw: string | undefined, byRaw: string | undefined) => {
    const by = byRaw && isUsageGroup(byRaw) ? byRaw : 'team';
    const range = spendRange(fromRaw, toRaw);
    const report =
      (await rollupsOf()?.report(range.fromMs, range.toMs, by)) ?? (await usageReport(ledgerSource(state.config().audit, state.services.redis), range.fromMs, range.toMs, by));
    return { by, range, report };
  };
  app.get(
    '/console/spend',
    kit.page('spend.read', async (c, who) => {
      const { by, range, report } = await spend(c.req.query('from'), c.req.query('to'), c.req.query('by'));
      const config = state.config();
      const status = await budgetStatus(config, state.services.budget.store);
      const refusals = new Map<string, number>();
      for (const v of (await state.metrics.registry.getSingleMetric('lanegate_limit_refusals_total')?.get())?.values ?? []) {
        if (v.labels.kind === 'budget') refusals.set(String(v.labels.name), v.value);
      }
      const budgets = status.data.map((row) => ({ ...(row as unknown as BudgetRow), refusals: refusals.get(String(row.name)) ?? 0 }));
      return c.html(SpendPage({ frame: who.frame, from: range.from, to: range.to, by, rows: report.rows, total: report.total, mismatched: report.integrity.mismatched, budgets }));
    }),
  );
  app.get(
    '/console/spend.csv',
    kit.page('spend.read', async (c) => {
      const { by, range, report } = await spend(c.req.query('from'), c.req.query('to'), c.req.query('by'));
      return c.body(toCsv(report, by), 200, {
        'content-type': 'text/csv; charset=utf-8',
        'content-disposition': `attachment; filename="lanegate-costs-${by}-${range.from}-${range.to}.csv"`,
        'x-lanegate-integrity-mismatched': String(report.integrity.mismatched),
      });
    }),
  );

  const DONE: Record<string, string> = { promoted: 'Promoted', 'rolled-back': 'Rolled back' };
  app.get(
    '/console/prompts',
    kit.page('prompts.read', async (c, who) => {
      const done = c.req.query('done');
      const prompt = c.req.query('prompt') ?? '';
      const notice = done && DONE[done] ? { kind: 'ok' as const, text: `${DONE[done]} ${prompt}; recorded in the audit trail.` } : undefined;
      return c.html(PromptsPage({ frame: who.frame, prompts: await promptViews(state.config().prompts), canChange: can(who.person, 'prompts.change'), notice }));
    }),
  );
  const pinOf = (name: string) => state.config().prompts.pins.get(name);
  app.get(
    '/console/prompts/:name/rollback',
    kit.page('prompts.change', (c, who) => {
      const name = c.req.param('name') ?? '';
      const pin = pinOf(name);
      const to = pin?.history.at(-1);
      if (!pin || !to) throw new GatewayError('invalid_request', `${name} has no earlier version to roll back to.`);
      return c.html(ConfirmPinPage({ frame: who.frame, action: 'rollback', prompt: name, from: pin.base.live, to, post: `/console/prompts/${encodeURIComponent(name)}/rollback` }));
    }),
  );
  app.post(
    '/console/prompts/:name/rollback',
    kit.action('prompts.change', async (c, who, form) => {
      if (form.confirm !== 'yes') throw new GatewayError('invalid_request', 'Confirm the rollback on its confirmation page.');
      const name = c.req.param('name') ?? '';
      await rollbackPrompt(state, who.person, { prompt: name, note: form.note?.trim() || null });
      return c.redirect(`/console/prompts?done=rolled-back&prompt=${encodeURIComponent(name)}`, 303);
    }),
  );
  app.get(
    '/console/prompts/:name/:version/promote',
    kit.page('prompts.change', (c, who) => {
      const name = c.req.param('name') ?? '';
      const version = c.req.param('version') ?? '';
      return c.html(ConfirmPinPage({ frame: who.frame, action: 'promote', prompt: name, from: pinOf(name)?.base.live ?? null, to: version, post: `/console/prompts/${encodeURIComponent(name)}/${encodeURIComponent(version)}/promote` }));
    }),
  );
  app.post(
    '/console/prompts/:name/:version/promote',
    kit.action('prompts.change', async (c, who, form) => {
      if (form.confirm !== 'yes') throw new GatewayError('invalid_request', 'Confirm the promotion on its confirmation page.');
      const name = c.req.param('name') ?? '';
      await promotePrompt(state, who.person, { prompt: name, version: c.req.param('version') ?? '', note: form.note?.trim() || null });
      return c.redirect(`/console/prompts?done=promoted&prompt=${encodeURIComponent(name)}`, 303);
    }),
  );

  app.get(
    '/console/health',
    kit.page('health.read', async (c, who) => c.html(HealthPage({ frame: who.frame, health: await healthView(state) }))),
  );
}
