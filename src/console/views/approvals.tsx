/** @jsxImportSource hono/jsx */
// Held tool calls, newest first. The rows are one component, so the page and
// the fragment the script polls for (GET /console/approvals/rows) are the
// same HTML.
import type { Approval } from '../../policy/approvals.js';
import { Csrf, Notice, Page, type Frame } from './layout.js';

export interface ApprovalRow {
  approval: Approval;
  /** The arguments as the lane's audit body rule allows: the JSON text, or only its hash. */
  shown: { text: string } | { sha256: string; mode: string };
  /** The policy rule that held it. */
  rule: string;
}

function Arguments(props: { row: ApprovalRow }) {
  const s = props.row.shown;
  if ('text' in s) return <pre class="args">{s.text}</pre>;
  return (
    <span class="muted">
      hidden by the lane (audit bodies: {s.mode}); sha256 <code>{s.sha256.slice(0, 16)}…</code>
    </span>
  );
}

export function ApprovalRows(props: { rows: ApprovalRow[]; frame: Frame; canDecide: boolean }) {
  if (props.rows.length === 0) {
    return (
      <tr data-id="none">
        <td colspan={9}>No held calls.</td>
      </tr>
    );
  }
  return (
    <>
      {props.rows.map(({ approval: a, ...row }) => (
        <tr data-id={a.id} data-status={a.status}>
          <td>
            <time datetime={a.created_at}>{a.created_at.replace('T', ' ').slice(0, 19)}</time>
          </td>
          <td>
            {a.app}
            <br />
            <span class="muted">{a.team}</span>
          </td>
          <td>{a.lane}</td>
          <td>
            <code>{a.tool}</code>
            <br />
            <span class="muted">{a.kind === 'mcp_tool_call' ? 'MCP call' : 'model tool call'}</span>
          </td>
          <td>
            <Arguments row={{ approval: a, ...row }} />
          </td>
          <td>{row.rule}</td>
          <td>
            {a.mcp?.run_id ? <code>{a.mcp.run_id}</code> : <span class="muted">none</span>}
            <br />
            <span class="muted">request {a.request_id}</span>
          </td>
          <td>{a.mcp ? <time datetime={a.mcp.expires_at}>{a.mcp.expires_at.replace('T', ' ').slice(0, 19)}</time> : <span class="muted">none</span>}</td>
          <td>
            {a.status === 'pending' && props.canDecide ? (
              <form method="post" action={`/console/approvals/${a.id}/decide`} class="decide">
                <Csrf frame={props.frame} />
                <label for={`reason-${a.id}`}>Reason</label>
                <input id={`reason-${a.id}`} name="reason" maxlength={2000} />
                <button type="submit" name="decision" value="approve">
                  Approve
                </button>
                <button type="submit" name="decision" value="reject" class="danger">
                  Deny
                </button>
              </form>
            ) : (
              <span class={`status ${a.status}`}>
                {a.status}
                {a.decided_by ? ` by ${a.decided_by}` : ''}
                {a.reason ? `: ${a.reason}` : ''}
                {a.execution ? ` (execution ${a.execution.status})` : ''}
              </span>
            )}
          </td>
        </tr>
      ))}
    </>
  );
}

export function ApprovalsPage(props: { frame: Frame; rows: ApprovalRow[]; status: string; canDecide: boolean; notice?: { kind: 'ok' | 'error'; text: string } | undefined }) {
  return (
    <Page title="Approvals" frame={props.frame} active="approvals">
      {props.notice ? <Notice kind={props.notice.kind}>{props.notice.text}</Notice> : null}
      <form method="get" action="/console/approvals" class="filters">
        <label for="status">Show</label>
        <select id="status" name="status">
          {['pending', 'approved', 'rejected', 'all'].map((s) => (
            <option value={s} selected={s === props.status}>
              {s}
            </option>
          ))}
        </select>
        <button type="submit">Show</button>
      </form>
      <p class="muted" id="live" aria-live="polite" data-poll={`/console/approvals/rows?status=${props.status}`}>
        The list refreshes itself every few seconds.
      </p>
      <table class="grid">
        <caption>Held tool calls, newest first</caption>
        <thead>
          <tr>
            <th scope="col">Held at</th>
            <th scope="col">App / team</th>
            <th scope="col">Lane</th>
            <th scope="col">Tool</th>
            <th scope="col">Arguments</th>
            <th scope="col">Rule</th>
            <th scope="col">Run</th>
            <th scope="col">Expires</th>
            <th scope="col">Decision</th>
          </tr>
        </thead>
        <tbody id="approval-rows">
          <ApprovalRows rows={props.rows} frame={props.frame} canDecide={props.canDecide} />
        </tbody>
      </table>
    </Page>
  );
}
