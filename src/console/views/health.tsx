/** @jsxImportSource hono/jsx */
// Health: deployments (breaker, cool-down), SLOs with their error budget,
// admission gates (in flight, queued, shed) and the config's last reload.
import type { HealthView } from '../health.js';
import { Page, type Frame } from './layout.js';

const seconds = (ms: number) => (ms > 0 ? `${(ms / 1000).toFixed(1)} s` : '—');

export function HealthPage(props: { frame: Frame; health: HealthView }) {
  const h = props.health;
  const reload = h.config.last_reload;
  return (
    <Page title="Health" frame={props.frame} active="health">
      <h2>Config</h2>
      <dl class="facts">
        <dt>File</dt>
        <dd>{h.config.file}</dd>
        <dt>Loaded</dt>
        <dd>{h.config.loaded_at}</dd>
        <dt>Last reload</dt>
        <dd class={reload && !reload.ok ? 'bad' : undefined}>
          {reload
            ? `${reload.at}: ${reload.ok ? 'ok' : `rejected, the previous config keeps serving: ${reload.problems}`}${reload.restart_required.length > 0 ? ` (restart needed for ${reload.restart_required.join(', ')})` : ''}`
            : 'none since start'}
        </dd>
      </dl>
      <table class="grid">
        <caption>Deployments (seen since start)</caption>
        <thead>
          <tr>
            {['Deployment', 'Breaker', 'Open for', '429 cool-down', 'In flight', 'Latency (EWMA)'].map((t) => (
              <th scope="col">{t}</th>
            ))}
          </tr>
        </thead>
        <tbody>
          {h.deployments.length === 0 ? (
            <tr>
              <td colspan={6}>No deployment has been called yet.</td>
            </tr>
          ) : (
            h.deployments.map((d) => (
              <tr>
                <td>{d.id}</td>
                <td class={`breaker ${d.breaker}`}>{d.breaker}</td>
                <td>{seconds(d.breaker_open_for_ms)}</td>
                <td>{seconds(d.cooling_for_ms)}</td>
                <td class="num">{d.in_flight}</td>
                <td class="num">{`${d.ewma_ms.toFixed(1)} ms`}</td>
              </tr>
            ))
          )}
        </tbody>
      </table>
      <table class="grid">
        <caption>SLOs (rolling hour)</caption>
        <thead>
          <tr>
            {['Route', 'Objective', 'Good / total', 'Meeting', 'Error budget left'].map((t) => (
              <th scope="col">{t}</th>
            ))}
          </tr>
        </thead>
        <tbody>
          {h.slo.length === 0 ? (
            <tr>
              <td colspan={5}>No SLOs are configured (models.*.slo).</td>
            </tr>
          ) : (
            h.slo.map((s) => (
              <tr>
                <td>{s.route}</td>
                <td>{`${(s.target * 100).toFixed(1)}% within ${s.latency_ms} ms`}</td>
                <td class="num">{`${s.good} / ${s.total}`}</td>
                <td>{s.meeting_objective === null ? 'no traffic' : s.meeting_objective ? 'yes' : 'no'}</td>
                <td class="num">{s.error_budget_remaining === null ? '—' : `${(s.error_budget_remaining * 100).toFixed(1)}%`}</td>
              </tr>
            ))
          )}
        </tbody>
      </table>
      <table class="grid">
        <caption>Admission gates</caption>
        <thead>
          <tr>
            {['Gate', 'In flight', 'Limit', 'Queued', 'Shed'].map((t) => (
              <th scope="col">{t}</th>
            ))}
          </tr>
        </thead>
        <tbody>
          {h.admission.length === 0 ? (
            <tr>
              <td colspan={5}>No request has been admitted yet.</td>
            </tr>
          ) : (
            h.admission.map((g) => (
              <tr>
                <td>{g.gate}</td>
                <td class="num">{g.in_flight}</td>
                <td class="num">{g.limit}</td>
                <td class="num">{g.queued}</td>
                <td>
                  {Object.entries(g.shed)
                    .map(([reason, n]) => `${reason}: ${n}`)
                    .join(', ') || '0'}
                </td>
              </tr>
            ))
          )}
        </tbody>
      </table>
    </Page>
  );
}
