// Budget periods: a rolling minute, and calendar days and months in a
// configured time zone.
import { DateTime } from 'luxon';

export type Period = 'minute' | 'day' | 'month';

const formatters = new Map<string, Intl.DateTimeFormat>();

function parts(now: number, timeZone: string): { y: number; m: number; d: number } {
  let f = formatters.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-CA', { timeZone, year: 'numeric', month: '2-digit', day: '2-digit' });
    formatters.set(timeZone, f);
  }
  const [y, m, d] = f.format(new Date(now)).split('-').map(Number) as [number, number, number];
  return { y, m, d };
}

export function validTimeZone(timeZone: string): boolean {
  try {
    new Intl.DateTimeFormat('en-CA', { timeZone });
    return true;
  } catch {
    return false;
  }
}

// Formatting a date in a time zone costs microseconds, so answers are shared
// within a quarter hour of UTC: every zone's offset (and every DST change) is
// a whole number of quarter hours, so no zone's date changes inside one.
// Requests arrive in time order and so do ledger records: one entry per
// period and zone is enough.
const QUARTER_HOUR = 900_000;
const memo = new Map<string, { quarter: number; id: string }>();

/** The counter a request at `now` belongs to: `m:<minute number>`, `d:YYYY-MM-DD` or `M:YYYY-MM`. */
export function periodId(period: Period, now: number, timeZone: string): string {
  if (period === 'minute') return `m:${Math.floor(now / 60_000)}`;
  const quarter = Math.floor(now / QUARTER_HOUR);
  const key = `${period}\u0000${timeZone}`;
  const hit = memo.get(key);
  if (hit && hit.quarter === quarter) return hit.id;
  const { y, m, d } = parts(now, timeZone);
  const mm = String(m).padStart(2, '0');
  const id = period === 'day' ? `d:${y}-${mm}-${String(d).padStart(2, '0')}` : `M:${y}-${mm}`;
  if (memo.size > 64) memo.clear();
  memo.set(key, { quarter, id });
  return id;
}

/** The minute before, for the rolling-minute estimate. */
export function previousMinuteId(now: number): string {
  return `m:${Math.floor(now / 60_000) - 1}`;
}

/** Share of the previous minute that still counts in a rolling minute at `now`. */
export function previousMinuteWeight(now: number): number {
  return 1 - (now % 60_000) / 60_000;
}

/**
 * When the period containing `now` ends (a rolling minute: when today's usage
 * falls out): the next local midnight, or the first of the next month, in the
 * zone. luxon keeps the zone's rules: the offset is the one in force at that
 * midnight, not at some instant near it, so a DST change on the day (Sydney's
 * first Sunday of October, New York's second Sunday of March) moves nothing.
 * Where a DST change skips midnight itself, the period ends at the first
 * instant of the new day.
 */
export function periodEnd(period: Period, now: number, timeZone: string): number {
  if (period === 'minute') return now + 60_000;
  const unit = period === 'day' ? 'day' : 'month';
  return DateTime.fromMillis(now, { zone: timeZone }).startOf(unit).plus(unit === 'day' ? { days: 1 } : { months: 1 }).startOf(unit).toMillis();
}

/** Whether the record time falls in the same period as `now`. */
export function samePeriod(period: Period, recordTime: number, now: number, timeZone: string): boolean {
  return periodId(period, recordTime, timeZone) === periodId(period, now, timeZone);
}
