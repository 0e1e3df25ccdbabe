/** @jsxImportSource hono/jsx */
// Spend over a range, grouped as `lanegate costs --by` groups it: a bar chart
// drawn on the server (SVG, sized by attributes: the CSP allows no inline
// style), the table, the CSV (the same bytes as `lanegate costs --csv`), and
// every budget with spent, remaining, reset time and refusals.
import type { UsageRow } from '../../budget/ledger.js';
import { USAGE_GROUPS } from '../../budget/usage-query.js';
import { Page, type Frame } from './layout.js';

export interface BudgetRow {
  name: string;
  scope: string;
  subject: string;
  period: string;
  resets_at: string;
  limit: { usd: number | null; tokens: number | null; requests: number | null };
  spent: { usd: number; tokens: number; requests: number };
  remaining: { usd: number | null; tokens: number | null; requests: number | null };
  refusals: number;
}

function Chart(props: { rows: UsageRow[]; by: string }) {
  const rows = props.rows.slice(0, 20);
  const max = Math.max(1, ...rows.map((r) => r.nano_usd));
  const bar = 22;
  const labelWidth = 180;
  const width = 720;
  const height = rows.length * bar + 8;
  return (
    <svg class="chart" role="img" aria-labelledby="chart-title" viewBox={`0 0 ${width} ${height}`} width={width} height={height}>
      <title id="chart-title">{`Spend in USD by ${props.by}`}</title>
      {rows.map((r, i) => {
        const w = Math.max(1, Math.round(((width - labelWidth - 110) * r.nano_usd) / max));
        const y = i * bar + 4;
        return (
          <g>
            <text x={labelWidth - 8} y={y + 15} text-anchor="end" class="label">
              {r.group.length > 24 ? `${r.group.slice(0, 23)}…` : r.group}
            </text>
            <rect x={labelWidth} y={y + 2} width={w} height={bar - 6} class="bar" />
            <text x={labelWidth + w + 6} y={y + 15} class="value">
              {`$${r.usd}`}
            </text>
          </g>
        );
      })}
    </svg>
  );
}

const limitText = (limit: number | null, used: number, remaining: number | null, money = false) =>
  limit === null ? `${money ? '$' : ''}${money ? used.toFixed(6) : used} (no limit)` : `${money ? '$' : ''}${money ? used.toFixed(6) : used} of ${money ? '$' : ''}${limit}, ${money ? '$' : ''}${money ? remaining!.toFixed(6) : remaining} left`;

export function SpendPage(props: { frame: Frame; from: string; to: string; by: string; rows: UsageRow[]; total: UsageRow; mismatched: number; budgets: BudgetRow[] }) {
  const csv = `/console/spend.csv?${new URLSearchParams({ from: props.from, to: props.to, by: props.by }).toString()}`;
  return (
    <Page title="Spend" frame={props.frame} active="spend">
      <form method="get" action="/console/spend" class="filters">
        <span class="field">
          <label for="from">From</label>
          <input id="from" name="from" type="date" value={props.from} required />
        </span>
        <span class="field">
          <label for="to">To (inclusive)</label>
          <input id="to" name="to" type="date" value={props.to} required />
        </span>
        <span class="field">
          <label for="by">Group by</label>
          <select id="by" name="by">
            {USAGE_GROUPS.map((g) => (
              <option value={g} selected={g === props.by}>
                {g}
              </option>
            ))}
          </select>
        </span>
        <button type="submit">Show</button>
      </form>
      <p>
        <a href={csv} download={`lanegate-costs-${props.by}-${props.from}-${props.to}.csv`} id="csv">
          Export CSV
        </a>{' '}
        <span class="muted">(the same bytes as <code>lanegate costs --from {props.from} --to {props.to} --by {props.by} --csv</code>)</span>
      </p>
      {props.mismatched > 0 ? <p class="notice error">{props.mismatched} records fail their hash check and are left out of the totals.</p> : null}
      {props.rows.length > 0 ? <Chart rows={props.rows} by={props.by} /> : <p>No spend in this range.</p>}
      <table class="grid">
        <caption>Spend by {props.by}</caption>
        <thead>
          <tr>
            {[props.by, 'Requests', 'Input tokens', 'Output tokens', 'USD', 'Saved tokens (cache)'].map((h) => (
              <th scope="col">{h}</th>
            ))}
          </tr>
        </thead>
        <tbody>
          {[...props.rows, props.total].map((r) => (
            <tr class={r === props.total ? 'total' : undefined}>
              <td>{r.group}</td>
              <td class="num">{r.requests}</td>
              <td class="num">{r.input_tokens}</td>
              <td class="num">{r.output_tokens}</td>
              <td class="num">{r.usd}</td>
              <td class="num">{r.saved_input_tokens + r.saved_output_tokens}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <h2>Budgets</h2>
      {props.budgets.length === 0 ? (
        <p>No budgets are configured.</p>
      ) : (
        <table class="grid">
          <caption>Budgets this period</caption>
          <thead>
            <tr>
              {['Budget', 'Subject', 'Period', 'USD', 'Tokens', 'Requests', 'Resets', 'Refusals (this instance)'].map((h) => (
                <th scope="col">{h}</th>
              ))}
            </tr>
          </thead>
          <tbody>
            {props.budgets.map((b) => (
              <tr>
                <td>{b.name}</td>
                <td>
                  {b.scope}: {b.subject}
                </td>
                <td>{b.period}</td>
                <td>{limitText(b.limit.usd, b.spent.usd, b.remaining.usd, true)}</td>
                <td>{limitText(b.limit.tokens, b.spent.tokens, b.remaining.tokens)}</td>
                <td>{limitText(b.limit.requests, b.spent.requests, b.remaining.requests)}</td>
                <td>
                  <time datetime={b.resets_at}>{b.resets_at.replace('T', ' ').slice(0, 16)}</time>
                </td>
                <td class="num">{b.refusals}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </Page>
  );
}
