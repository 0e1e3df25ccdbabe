/** @jsxImportSource hono/jsx */
// The audit trail: search with the admin API's filters, one record's full
// view with its integrity, and the chains' verify action.
import type { VerifyReport } from '../../audit/read/verify.js';
import { Csrf, Notice, Page, type Frame } from './layout.js';

type AuditRecord = Record<string, unknown>;

const FILTERS = [
  { name: 'from', label: 'From (ISO time)' },
  { name: 'to', label: 'To (ISO time)' },
  { name: 'team', label: 'Team' },
  { name: 'app', label: 'App' },
  { name: 'lane', label: 'Lane' },
  { name: 'model', label: 'Model' },
  { name: 'status', label: 'Status (429, 5xx)' },
  { name: 'kind', label: 'Kind' },
  { name: 'limit', label: 'Rows' },
] as const;

const text = (v: unknown) => (v === null || v === undefined ? '' : typeof v === 'object' ? String((v as { name?: unknown }).name ?? '') : String(v));

/** A record's page, with its time (`t`) so the search reads the files of that time first. */
function recordHref(r: Record<string, unknown>): string {
  const t = Date.parse(text(r.time));
  return `/console/audit/record/${encodeURIComponent(text(r.id))}${Number.isFinite(t) ? `?t=${t}` : ''}`;
}

export function AuditPage(props: {
  frame: Frame;
  query: Record<string, string>;
  records: AuditRecord[];
  integrity: { checked: number; mismatched: number; unsealed: number };
  next?: string | undefined;
  canVerify: boolean;
  error?: string | undefined;
}) {
  const nextQuery = props.next ? new URLSearchParams({ ...props.query, after: props.next }).toString() : undefined;
  return (
    <Page title="Audit" frame={props.frame} active="audit">
      {props.error ? <Notice kind="error">{props.error}</Notice> : null}
      <form method="get" action="/console/audit" class="filters">
        {FILTERS.map((f) => (
          <span class="field">
            <label for={`f-${f.name}`}>{f.label}</label>
            <input id={`f-${f.name}`} name={f.name} value={props.query[f.name] ?? ''} />
          </span>
        ))}
        <button type="submit">Search</button>
      </form>
      <section aria-labelledby="chains">
        <h2 id="chains">Chain status</h2>
        <p>
          This page: {props.integrity.checked} records checked against their hashes, {props.integrity.mismatched} mismatched, {props.integrity.unsealed} unsealed.
        </p>
        {props.canVerify ? (
          <form method="post" action="/console/audit/verify">
            <Csrf frame={props.frame} />
            <button type="submit">Verify every chain</button>
          </form>
        ) : null}
      </section>
      <table class="grid">
        <caption>Records, newest first</caption>
        <thead>
          <tr>
            {['Time', 'Kind', 'Record', 'App', 'Team', 'Lane', 'Model', 'Status', 'Integrity'].map((h) => (
              <th scope="col">{h}</th>
            ))}
          </tr>
        </thead>
        <tbody>
          {props.records.length === 0 ? (
            <tr>
              <td colspan={9}>No records match.</td>
            </tr>
          ) : (
            props.records.map((r) => (
              <tr>
                <td>{text(r.time).replace('T', ' ').slice(0, 19)}</td>
                <td>{text(r.kind)}</td>
                <td>
                  <a href={recordHref(r)}>{text(r.id)}</a>
                </td>
                <td>{text(r.app)}</td>
                <td>{text(r.team)}</td>
                <td>{text(r.lane)}</td>
                <td>{text(r.model)}</td>
                <td>{text(r.status)}</td>
                <td class={`integrity ${text(r.integrity)}`}>{text(r.integrity)}</td>
              </tr>
            ))
          )}
        </tbody>
      </table>
      {nextQuery ? (
        <p>
          <a href={`/console/audit?${nextQuery}`}>Older records</a>
        </p>
      ) : null}
    </Page>
  );
}

const SECTIONS = [
  ['policy', 'Policy decisions'],
  ['attempts', 'Attempts'],
  ['tools', 'Tool calls'],
  ['bodies', 'Bodies (as the lane allows)'],
] as const;

export function AuditRecordPage(props: { frame: Frame; record: AuditRecord }) {
  const r = props.record;
  return (
    <Page title={`Audit record ${text(r.id)}`} frame={props.frame} active="audit">
      <p>
        <a href="/console/audit">Back to the search</a>
      </p>
      <dl class="facts">
        <dt>Kind</dt>
        <dd>{text(r.kind)}</dd>
        <dt>Time</dt>
        <dd>{text(r.time)}</dd>
        <dt>Integrity</dt>
        <dd class={`integrity ${text(r.integrity)}`}>
          {text(r.integrity)}
          {r.integrity_reason ? `: ${text(r.integrity_reason)}` : ''}
        </dd>
        <dt>Chain</dt>
        <dd>
          prev <code>{text(r.prev).slice(0, 16) || 'none'}</code>, hash <code>{text(r.hash).slice(0, 16) || 'none'}</code>
        </dd>
      </dl>
      {SECTIONS.filter(([k]) => r[k] !== undefined && r[k] !== null).map(([k, title]) => (
        <section aria-label={title}>
          <h2>{title}</h2>
          <pre class="json">{JSON.stringify(r[k], null, 2)}</pre>
        </section>
      ))}
      <section aria-label="Whole record">
        <h2>Whole record</h2>
        <pre class="json">{JSON.stringify(r, null, 2)}</pre>
      </section>
    </Page>
  );
}

export function VerifyPage(props: { frame: Frame; report: VerifyReport }) {
  const r = props.report;
  return (
    <Page title="Chain verification" frame={props.frame} active="audit">
      <Notice kind={r.ok ? 'ok' : 'error'}>{r.ok ? 'Every chain is intact and no answered request lost its record.' : 'Verification found problems.'}</Notice>
      <table class="grid">
        <caption>Chains in {r.dir}</caption>
        <thead>
          <tr>
            <th scope="col">Chain</th>
            <th scope="col">Files</th>
            <th scope="col">Records</th>
            <th scope="col">State</th>
          </tr>
        </thead>
        <tbody>
          {r.chains.map((ch) => (
            <tr>
              <td>{ch.chain}</td>
              <td>{ch.files}</td>
              <td>{ch.records}</td>
              <td>{ch.problem ? `BROKEN at ${ch.problem.file} line ${ch.problem.line}: ${ch.problem.reason}` : 'OK'}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {r.lost.length > 0 ? <p>Answered requests without a record: {r.lost.map((l) => l.id).join(', ')}</p> : null}
      <p>
        <a href="/console/audit">Back to the audit trail</a>
      </p>
    </Page>
  );
}

/** A verification still reading the chains: the page reloads itself until the report is there. */
export function VerifyRunningPage(props: { frame: Frame; by: string; startedAt: string }) {
  return (
    <Page title="Chain verification" frame={props.frame} active="audit" refreshSeconds={2}>
      <p role="status">
        Verifying every chain (started by {props.by} at {props.startedAt.replace('T', ' ').slice(0, 19)} UTC). It reads the whole trail; this page shows the
        report when it is done.
      </p>
      <p>
        <a href="/console/audit">Back to the audit trail</a>
      </p>
    </Page>
  );
}
