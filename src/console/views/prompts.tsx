/** @jsxImportSource hono/jsx */
// Prompts: each one's pinned version, history and eval reports; promote (when
// a report of the version passed the gate) and roll back, each through a
// confirmation page, so a stray click changes nothing.
import { gatePassed, type PromptView } from '../prompts.js';
import { Csrf, Notice, Page, type Frame } from './layout.js';

export function PromptsPage(props: { frame: Frame; prompts: PromptView[]; canChange: boolean; notice?: { kind: 'ok' | 'error'; text: string } | undefined }) {
  return (
    <Page title="Prompts" frame={props.frame} active="prompts">
      {props.notice ? <Notice kind={props.notice.kind}>{props.notice.text}</Notice> : null}
      {props.prompts.length === 0 ? <p>This gateway has no prompt templates.</p> : null}
      {props.prompts.map((p) => (
        <section class="prompt" aria-labelledby={`p-${p.name}`}>
          <h2 id={`p-${p.name}`}>{p.name}</h2>
          <dl class="facts">
            <dt>Pinned</dt>
            <dd class="pinned">{p.live ?? 'not pinned'}</dd>
            <dt>Canary</dt>
            <dd>{p.canary ? `${p.canary.version} (${p.canary.weight})` : 'none'}</dd>
            <dt>History</dt>
            <dd>{p.history.length > 0 ? p.history.join(' → ') : 'none'}</dd>
            <dt>Eval set</dt>
            <dd>{p.evalSet ?? 'the newest'}</dd>
          </dl>
          {props.canChange && p.history.length > 0 ? (
            <p>
              <a class="button danger" href={`/console/prompts/${encodeURIComponent(p.name)}/rollback`}>
                Roll back to {p.history.at(-1)}…
              </a>
            </p>
          ) : null}
          <table class="grid">
            <caption>Versions of {p.name}</caption>
            <thead>
              <tr>
                <th scope="col">Version</th>
                <th scope="col">Model</th>
                <th scope="col">Description</th>
                <th scope="col">Eval gate</th>
                <th scope="col">Action</th>
              </tr>
            </thead>
            <tbody>
              {p.versions.map((v) => {
                const passed = gatePassed(p, v.version);
                return (
                  <tr>
                    <td>
                      {v.version}
                      {v.version === p.live ? ' (live)' : ''}
                    </td>
                    <td>{v.model ?? ''}</td>
                    <td>{v.description ?? ''}</td>
                    <td>{passed ? 'passed' : p.reports.some((r) => r.version === v.version) ? 'failed' : 'no report'}</td>
                    <td>
                      {props.canChange && passed && v.version !== p.live ? (
                        <a class="button" href={`/console/prompts/${encodeURIComponent(p.name)}/${encodeURIComponent(v.version)}/promote`}>
                          Promote…
                        </a>
                      ) : null}
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
          {p.reports.length > 0 ? (
            <table class="grid">
              <caption>Eval reports of {p.name}, newest first</caption>
              <thead>
                <tr>
                  <th scope="col">Finished</th>
                  <th scope="col">Version</th>
                  <th scope="col">Set</th>
                  <th scope="col">Pass rate</th>
                  <th scope="col">Gate</th>
                </tr>
              </thead>
              <tbody>
                {p.reports.map((r) => (
                  <tr>
                    <td>{r.finished_at.replace('T', ' ').slice(0, 19)}</td>
                    <td>{r.version}</td>
                    <td>{r.set}</td>
                    <td class="num">{`${(r.pass_rate * 100).toFixed(1)}% (threshold ${(r.threshold * 100).toFixed(1)}%)`}</td>
                    <td>{r.gate}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          ) : (
            <p class="muted">No eval reports yet (run `lanegate eval` or `lanegate promote`).</p>
          )}
        </section>
      ))}
    </Page>
  );
}

export function ConfirmPinPage(props: { frame: Frame; action: 'promote' | 'rollback'; prompt: string; from: string | null; to: string; post: string }) {
  const verb = props.action === 'promote' ? 'Promote' : 'Roll back';
  return (
    <Page title={`${verb} ${props.prompt}?`} frame={props.frame} active="prompts">
      <p>
        {props.prompt}: <strong>{props.from ?? 'not pinned'}</strong> → <strong>{props.to}</strong>. The pins file is rewritten, the gateway reloads it, and the change is recorded in the audit trail with your name.
      </p>
      <form method="post" action={props.post}>
        <Csrf frame={props.frame} />
        <input type="hidden" name="confirm" value="yes" />
        <label for="note">Note (why)</label>
        <input id="note" name="note" maxlength={2000} />
        <button type="submit" class={props.action === 'rollback' ? 'danger' : undefined}>
          {verb} to {props.to}
        </button>{' '}
        <a href="/console/prompts">Cancel</a>
      </form>
    </Page>
  );
}
