// Every budget with spent, reserved, remaining and reset time, and every rate
// limit's rolling minute, as GET /admin/budgets and the console's spend page
// show them.
import type { CompiledConfig } from '../config/compile.js';
import { periodEnd, periodId, previousMinuteId, previousMinuteWeight } from './periods.js';
import type { BudgetStore } from './store.js';

export interface BudgetStatus {
  object: 'list';
  timezone: string;
  data: Array<Record<string, unknown>>;
  rate_limits: Array<Record<string, unknown>>;
}

export async function budgetStatus(config: CompiledConfig, store: BudgetStore, now = Date.now()): Promise<BudgetStatus> {
  const limits = config.limits;
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
  const states = ids.length > 0 ? await store.read(ids, now) : [];
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
  const rateStates = rateIds.length > 0 ? await store.read(rateIds, now) : [];
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
  return { object: 'list' as const, timezone: limits.timezone, data, rate_limits };
}
