// The one reading of a usage report's range and grouping, shared by
// `lanegate costs` and GET /admin/usage so the two never disagree.
import type { GroupBy } from './ledger.js';

export const USAGE_GROUPS: readonly GroupBy[] = ['team', 'app', 'key', 'model', 'provider', 'lane', 'client'];

export function isUsageGroup(value: string): value is GroupBy {
  return (USAGE_GROUPS as readonly string[]).includes(value);
}

const DATE_ONLY = /^\d{4}-\d{2}-\d{2}$/;
const DAY_MS = 86_400_000;

/**
 * A report bound in ms, or NaN when the text is no date. A bare date is a
 * whole UTC day: as the end of a range (`to`) it includes that day, so
 * `--to 2026-11-30` counts November 30th and `--to <today>` counts today.
 */
export function parseUsageBound(value: string, { end }: { end: boolean }): number {
  const t = Date.parse(value);
  if (Number.isNaN(t)) return NaN;
  return end && DATE_ONLY.test(value.trim()) ? t + DAY_MS : t;
}
