// lanegate_approvals_pending: tool calls held for a person's decision now,
// by kind (`mcp_tool_call`: an agent's call the gateway will run once
// approved; `model_tool_call`: a model's proposed call the app runs). Read from the
// approvals store when /metrics is scraped rather than counted up and down:
// decisions and expiry happen on any replica (or nowhere: an MCP call simply
// expires), and a count kept in one process would drift from the store that
// decides. With Redis every replica reports the same shared figure, so
// dashboards take max(), not sum().
import { Gauge, type Registry } from 'prom-client';
import type { Logger } from '../telemetry/logger.js';
import type { ApprovalKind, ApprovalStore } from './approvals.js';

export const APPROVAL_KINDS: readonly ApprovalKind[] = ['mcp_tool_call', 'model_tool_call'];

// A scrape reads at most this many pending approvals; a backlog past it shows as this figure.
const MAX_COUNTED = 10_000;

/** Registers the gauge on the registry (once: a second call for the same registry keeps the first). */
export function watchPendingApprovals(registry: Registry, approvals: ApprovalStore, logger: Logger): void {
  if (registry.getSingleMetric('lanegate_approvals_pending')) return;
  new Gauge({
    name: 'lanegate_approvals_pending',
    help: 'Tool calls held for approval and still awaiting a decision (MCP calls past their expiry excluded), by kind: mcp_tool_call (agents, run by the gateway once approved) or model_tool_call (proposed by models). Shared across replicas when Redis is configured: aggregate with max().',
    labelNames: ['kind'],
    registers: [registry],
    async collect() {
      let pending;
      try {
        pending = await approvals.list({ status: 'pending', limit: MAX_COUNTED });
      } catch (err) {
        // A scrape must not fail for it: the gauge keeps its last figures.
        logger.warn({ err: String(err) }, 'pending approvals could not be counted for /metrics');
        return;
      }
      const now = Date.now();
      const counts = new Map<string, number>(APPROVAL_KINDS.map((k) => [k, 0]));
      for (const a of pending) {
        const kind = a.kind ?? 'model_tool_call';
        if (kind === 'mcp_tool_call' && a.mcp && Date.parse(a.mcp.expires_at) < now) continue;
        counts.set(kind, (counts.get(kind) ?? 0) + 1);
      }
      for (const [kind, n] of counts) this.set({ kind }, n);
    },
  });
}
