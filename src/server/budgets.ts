// Finance and SRE views of spend: every budget with spent, reserved and
// remaining, and usage reports from the ledger.
import type { HttpBindings } from '@hono/node-server';
import type { Hono } from 'hono';
import { ledgerSource, toCsv, usageReport } from '../budget/ledger.js';
import { isUsageGroup, parseUsageBound, USAGE_GROUPS } from '../budget/usage-query.js';
import { budgetStatus } from '../budget/status.js';
import { GatewayError } from '../errors.js';
import type { GatewayState } from './state.js';

type Env = { Bindings: HttpBindings };

function parseTime(value: string | undefined, fallback: number, param: 'from' | 'to'): number {
  if (!value) return fallback;
  const t = parseUsageBound(value, { end: param === 'to' });
  if (Number.isNaN(t)) throw new GatewayError('invalid_request', `${param} must be a date or time such as 2026-11-01 or 2026-11-01T12:00:00Z.`, { param });
  return t;
}

export function mountBudgets(app: Hono<Env>, state: GatewayState): void {
  app.get('/admin/budgets', async (c) => c.json(await budgetStatus(state.config(), state.services.budget.store)));

  app.get('/admin/usage', async (c) => {
    const by = c.req.query('group_by') ?? 'team';
    if (!isUsageGroup(by)) throw new GatewayError('invalid_request', `group_by must be one of ${USAGE_GROUPS.join(', ')}.`, { param: 'group_by' });
    const now = Date.now();
    const from = parseTime(c.req.query('from'), now - 30 * 86_400_000, 'from');
    const to = parseTime(c.req.query('to'), now + 1, 'to');
    const report = await usageReport(ledgerSource(state.config().audit, state.services.redis), from, to, by);
    // Records whose hash does not match are left out of the totals and reported beside them (budget/ledger.ts).
    const flag = { 'x-lanegate-integrity-mismatched': String(report.integrity.mismatched) };
    if ((c.req.query('format') ?? '') === 'csv' || (c.req.header('accept') ?? '').includes('text/csv')) {
      return c.body(toCsv(report, by), 200, { 'content-type': 'text/csv; charset=utf-8', ...flag });
    }
    return c.json(
      { object: 'usage_report', from: new Date(from).toISOString(), to: new Date(to).toISOString(), group_by: by, data: report.rows, total: report.total, integrity: report.integrity },
      200,
      flag,
    );
  });
}
