// Budget periods: a rolling minute, and calendar days and months in a
// configured time zone.

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

/** When the period containing `now` ends (a rolling minute: when today's usage falls out). */
export function periodEnd(period: Period, now: number, timeZone: string): number {
  if (period === 'minute') return now + 60_000;
  const { y, m, d } = parts(now, timeZone);
  const next = period === 'day' ? [y, m - 1, d + 1] : [y, m, 1];
  // Midnight local time: the UTC instant whose wall clock in the zone reads 00:00.
  const guess = Date.UTC(next[0]!, next[1]!, next[2]!);
  return guess - offsetMs(guess, timeZone);
}

function offsetMs(at: number, timeZone: string): number {
  const f = new Intl.DateTimeFormat('en-US', { timeZone, hourCycle: 'h23', year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric', second: 'numeric' });
  const p = Object.fromEntries(f.formatToParts(new Date(at)).map((x) => [x.type, Number(x.value)]));
  const wall = Date.UTC(p.year!, p.month! - 1, p.day!, p.hour!, p.minute!, p.second!);
  return wall - Math.floor(at / 1000) * 1000;
}

/** Whether the record time falls in the same period as `now`. */
export function samePeriod(period: Period, recordTime: number, now: number, timeZone: string): boolean {
  return periodId(period, recordTime, timeZone) === periodId(period, now, timeZone);
}
