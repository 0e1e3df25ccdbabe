// The approvals page's rows: each held call with its arguments as its lane's
// audit body rule allows (full or redacted: the text; hash: only its sha256)
// and the policy rule that held it.
import type { CompiledConfig } from '../config/compile.js';
import type { ApprovalStatus } from '../policy/approvals.js';
import { toolKey } from '../policy/tool-name.js';
import type { GatewayState } from '../server/state.js';
import { sha256Hex } from '../sha256.js';
import type { ApprovalRow } from './views/approvals.js';

export type StatusFilter = ApprovalStatus | 'all';

export function parseStatus(raw: string | undefined): StatusFilter {
  return raw === 'approved' || raw === 'rejected' || raw === 'all' ? raw : 'pending';
}

function ruleFor(config: CompiledConfig, laneName: string, tool: string): string {
  const lane = config.policies.lanes.get(laneName);
  if (lane?.tools.requireApproval.has(toolKey(tool))) return `lane ${laneName}: tools.require_approval`;
  return `lane ${laneName}: approval required`;
}

export async function approvalRows(state: GatewayState, status: StatusFilter): Promise<ApprovalRow[]> {
  const config = state.config();
  const list = await state.services.approvals.list({ ...(status === 'all' ? {} : { status }), limit: 200 });
  return list.map((approval) => {
    const mode = config.policies.lanes.get(approval.lane)?.audit.bodies ?? 'hash';
    const shown = mode === 'hash' ? { sha256: sha256Hex(approval.arguments), mode } : { text: pretty(approval.arguments) };
    return { approval, shown, rule: ruleFor(config, approval.lane, approval.mcp?.canonical ?? approval.tool) };
  });
}

function pretty(text: string): string {
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text;
  }
}
