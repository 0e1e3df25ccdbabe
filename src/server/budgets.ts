// Finance and SRE views of spend: every budget with spent, reserved and
// remaining, and usage reports from the ledger.
import type { HttpBindings } from '@hono/node-server';
import type { Hono } from 'hono';
import { ledgerSource, toCsv, usageReport } from '../budget/ledger.js';
import { isUsageGroup, parseUsageBound, USAGE_GROUPS } from '../budget/usage-query.js';
import { periodEnd, periodId, previousMinuteId, previousMinuteWeight } from '../budget/periods.js';
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
  app.get('/admin/budgets', async (c) => {
    const config = state.config();
    const limits = config.limits;
    const now = Date.now();
    // One row per budget and subject: configured subjects, or every key/app/team the config knows.
    const keys = [...config.keysByHash.values()].map((e) => e.key);
    const subjects = (scope: string, match: string[] | undefined): string[] => {
      if (match) return match;
      if (scope === 'global') return ['*'];
      const all = keys.map((k) => (scope === 'key' ? k.id : scope === 'app' ? k.app : k.team));
      return [...new Set(all)];
    };
    const rows: Array<Record<string, unknown>> = [];
    const ids: string[] = [];
    for (const b of limits.budgets) {
      for (const subject of subjects(b.scope, b.match)) {
        ids.push(`budget:${b.name}:${b.scope}:${encodeURIComponent(subject)}:${periodId(b.period, now, limits.timezone)}`);
        rows.push({ name: b.name, scope: b.scope, subject, period: b.period, resets_at: new Date(periodEnd(b.period, now, limits.timezone)).toISOString(), limit: { usd: b.usd ?? null, tokens: b.tokens ?? null, requests: b.requests ?? null } });
      }
    }
    const states = ids.length > 0 ? await state.services.budget.store.read(ids, now) : [];
    const data = rows.map((row, i) => {
      const s = states[i]!;
      const limit = row.limit as { usd: number | null; tokens: number | null; requests: number | null };
      const remaining = (l: number | null, used: number) => (l === null ? null : Math.max(0, l - used));
      return {
        ...row,
        spent: { usd: s.spent.usd / 1e9, tokens: s.spent.tokens, requests: s.spent.requests },
        reserved: { usd: s.reserved.usd / 1e9, tokens: s.reserved.tokens, requests: s.reserved.requests },
        remaining: {
          usd: limit.usd === null ? null : Math.max(0, limit.usd - (s.spent.usd + s.reserved.usd) / 1e9),
          tokens: remaining(limit.tokens, s.spent.tokens + s.reserved.tokens),
          requests: remaining(limit.requests, s.spent.requests + s.reserved.requests),
        },
      };
    });
    // Rate limits: each subject's rolling minute, as the limit sees it now, and the two counters behind it.
    const rateRows: Array<Record<string, unknown>> = [];
    const rateIds: string[] = [];
    for (const r of limits.rateLimits) {
      for (const subject of subjects(r.scope, r.match)) {
        const base = `rate:${r.name}:${r.scope}:${encodeURIComponent(subject)}`;
        rateIds.push(`${base}:${periodId('minute', now, limits.timezone)}`, `${base}:${previousMinuteId(now)}`);
        rateRows.push({ name: r.name, scope: r.scope, subject, limit: { requests_per_minute: r.requests_per_minute ?? null, tokens_per_minute: r.tokens_per_minute ?? null } });
      }
    }
    const rateStates = rateIds.length > 0 ? await state.services.budget.store.read(rateIds, now) : [];
    const weight = previousMinuteWeight(now);
    const minute = (s: (typeof rateStates)[number]) => ({
      spent: { requests: s.spent.requests, tokens: s.spent.tokens },
      reserved: { requests: s.reserved.requests, tokens: s.reserved.tokens },
    });
    const rate_limits = rateRows.map((row, i) => {
      const current = rateStates[2 * i]!;
      const previous = rateStates[2 * i + 1]!;
      const used = (d: 'requests' | 'tokens') => current.spent[d] + current.reserved[d] + Math.ceil((previous.spent[d] + previous.reserved[d]) * weight);
      return { ...row, used: { requests: used('requests'), tokens: used('tokens') }, current_minute: minute(current), previous_minute: minute(previous) };
    });
    return c.json({ object: 'list', timezone: limits.timezone, data, rate_limits });
  });

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
