// The tool-call guard: every call a model makes is checked against the lane
// before the app sees it. Denied tools and recipient-rule violations are
// blocked; tools that need approval are held.
import { toolAllowed, type CompiledLane } from './compile.js';
import { recipientViolation } from './recipients.js';

export type ToolVerdict = { outcome: 'pass' } | { outcome: 'hold' } | { outcome: 'block'; reason: string };

export function judgeToolCall(lane: CompiledLane, tool: string, args: string): ToolVerdict {
  if (!toolAllowed(lane, tool)) return { outcome: 'block', reason: `tool "${tool}" is not allowed in lane ${lane.name}` };
  const rule = lane.tools.recipients;
  if (rule) {
    let parsed: unknown;
    try {
      parsed = args.trim() === '' ? {} : JSON.parse(args);
    } catch {
      return { outcome: 'block', reason: `the arguments of "${tool}" are not valid JSON, so its recipients cannot be checked` };
    }
    const violation = recipientViolation(rule, parsed, { tool, lane: lane.name });
    if (violation) return { outcome: 'block', reason: violation };
  }
  if (lane.tools.requireApproval.has(tool)) return { outcome: 'hold' };
  return { outcome: 'pass' };
}

/** Does this lane's guard have anything to check? If not, responses skip it. */
export function laneGuardsTools(lane: CompiledLane): boolean {
  const t = lane.tools;
  return t.allow !== undefined || t.deny.size > 0 || t.requireApproval.size > 0 || t.recipients !== undefined;
}
