// Budget resets in IANA time zones across their DST changes. The expected
// instants are written out by hand from each zone's rules (Sydney: +11 in
// summer, +10 in winter, changing at 02:00/03:00 local on the first Sunday of
// October/April; New York: -5/-4, on the second Sunday of March and the first
// of November), so they do not depend on the code under test.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { DateTime } from 'luxon';
import { periodEnd, periodId } from '../../src/budget/periods.js';
import { ADMIN_KEY, APP_KEY, startTestGateway, type TestGateway } from '../helpers/gateway.js';

const iso = (ms: number) => new Date(ms).toISOString();

describe('budget periods across DST changes', () => {
  it('periods – a Sydney day that ends just before DST starts resets at local midnight, not an hour early', () => {
    // Saturday 3 October 2026, 22:00 in Sydney (+10); DST starts at 02:00 on Sunday the 4th.
    const t = Date.parse('2026-10-03T12:00:00Z');
    assert.equal(periodId('day', t, 'Australia/Sydney'), 'd:2026-10-03');
    assert.equal(iso(periodEnd('day', t, 'Australia/Sydney')), '2026-10-03T14:00:00.000Z');
    // The next day (23 hours long) ends at midnight +11.
    assert.equal(iso(periodEnd('day', Date.parse('2026-10-04T12:00:00Z'), 'Australia/Sydney')), '2026-10-04T13:00:00.000Z');
    // October ends at midnight +11.
    assert.equal(iso(periodEnd('month', t, 'Australia/Sydney')), '2026-10-31T13:00:00.000Z');
  });

  it('periods – a Sydney day that ends just before DST ends resets at local midnight, not an hour late', () => {
    // Saturday 4 April 2026, 16:00 in Sydney (+11); DST ends at 03:00 on Sunday the 5th.
    const t = Date.parse('2026-04-04T05:00:00Z');
    assert.equal(periodId('day', t, 'Australia/Sydney'), 'd:2026-04-04');
    assert.equal(iso(periodEnd('day', t, 'Australia/Sydney')), '2026-04-04T13:00:00.000Z');
    // Sunday the 5th (25 hours long) ends at midnight +10.
    assert.equal(iso(periodEnd('day', Date.parse('2026-04-05T05:00:00Z'), 'Australia/Sydney')), '2026-04-05T14:00:00.000Z');
    // March ends at midnight +11, April at midnight +10.
    assert.equal(iso(periodEnd('month', Date.parse('2026-03-20T05:00:00Z'), 'Australia/Sydney')), '2026-03-31T13:00:00.000Z');
    assert.equal(iso(periodEnd('month', t, 'Australia/Sydney')), '2026-04-30T14:00:00.000Z');
  });

  it('periods – New York days and months around both DST changes end at local midnight', () => {
    const ny = 'America/New_York';
    // Saturday 7 and Sunday 8 March 2026 (DST starts at 02:00 on the 8th).
    assert.equal(iso(periodEnd('day', Date.parse('2026-03-07T20:00:00Z'), ny)), '2026-03-08T05:00:00.000Z');
    assert.equal(iso(periodEnd('day', Date.parse('2026-03-08T20:00:00Z'), ny)), '2026-03-09T04:00:00.000Z');
    // Saturday 31 October and Sunday 1 November 2026 (DST ends at 02:00 on the 1st).
    assert.equal(iso(periodEnd('day', Date.parse('2026-10-31T20:00:00Z'), ny)), '2026-11-01T04:00:00.000Z');
    assert.equal(iso(periodEnd('day', Date.parse('2026-11-01T20:00:00Z'), ny)), '2026-11-02T05:00:00.000Z');
    assert.equal(iso(periodEnd('month', Date.parse('2026-10-31T20:00:00Z'), ny)), '2026-11-01T04:00:00.000Z');
    assert.equal(iso(periodEnd('month', Date.parse('2026-03-07T20:00:00Z'), ny)), '2026-04-01T04:00:00.000Z');
    // The reset instant is the first of the next period.
    const end = periodEnd('day', Date.parse('2026-03-07T20:00:00Z'), ny);
    assert.equal(periodId('day', end - 1, ny), 'd:2026-03-07');
    assert.equal(periodId('day', end, ny), 'd:2026-03-08');
  });

  it('periods – every day of a year in Sydney and New York ends where the next local day begins', () => {
    for (const zone of ['Australia/Sydney', 'America/New_York']) {
      for (let day = DateTime.fromISO('2026-01-01T12:00', { zone }); day.year === 2026; day = day.plus({ days: 1 })) {
        const end = periodEnd('day', day.toMillis(), zone);
        const expected = day.plus({ days: 1 }).startOf('day');
        assert.equal(end, expected.toMillis(), `${zone} ${day.toISODate()}: ${iso(end)} is not ${expected.toISO()}`);
        assert.notEqual(periodId('day', end - 1, zone), periodId('day', end, zone));
      }
    }
  });
});

describe('budget reset times over HTTP', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startTestGateway({
      extra: `
pricing:
  mock-fast: { input: 10, output: 10, max_output_tokens: 50 }
budgets:
  timezone: Australia/Sydney
  rules:
    - { name: sydney-daily, scope: team, match: [team-alpha], period: day, requests: 1 }
    - { name: sydney-monthly, scope: team, match: [team-alpha], period: month, usd: 100 }
`,
    });
  });
  after(() => gw.close());

  it('budgets – /admin/budgets and a refusal report the next Sydney midnight as the reset', async () => {
    const now = DateTime.now().setZone('Australia/Sydney');
    const res = await fetch(`${gw.url}/admin/budgets`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } });
    assert.equal(res.status, 200);
    const rows = ((await res.json()) as { data: Array<{ name: string; resets_at: string }> }).data;
    const daily = rows.find((r) => r.name === 'sydney-daily')!;
    const monthly = rows.find((r) => r.name === 'sydney-monthly')!;
    assert.equal(Date.parse(daily.resets_at), now.plus({ days: 1 }).startOf('day').toMillis(), daily.resets_at);
    assert.equal(Date.parse(monthly.resets_at), now.plus({ months: 1 }).startOf('month').toMillis(), monthly.resets_at);

    const ask = () =>
      fetch(`${gw.baseURL}/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${APP_KEY}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'fast', max_tokens: 1, messages: [{ role: 'user', content: 'x' }] }),
      });
    assert.equal((await ask()).status, 200);
    const refused = await ask();
    assert.equal(refused.status, 429);
    const body = (await refused.json()) as { error: { code: string; message: string } };
    assert.equal(body.error.code, 'budget_exceeded');
    assert.ok(body.error.message.includes(`resets at ${daily.resets_at}`), body.error.message);
  });
});
