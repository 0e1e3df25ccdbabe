// The tool-call guard: every call a model makes is checked against the lane
// and the request before the app sees it. Calls to tools the lane refuses or
// the request did not offer, and recipient-rule violations, are blocked;
// tools that need approval are held. Names compare in their canonical form.
import { toolRefusal, type CompiledLane } from './compile.js';
import type { ToolKey } from './tool-name.js';
import { recipientViolation } from './recipients.js';

/** Why a call was blocked: the lane's lists, the catalogue, the request's tools, or recipient rules. */
export const TOOL_BLOCK_RULES = ['denied', 'uncatalogued', 'not_offered', 'recipients'] as const;
export type ToolBlockRule = (typeof TOOL_BLOCK_RULES)[number];

export type ToolVerdict = { outcome: 'pass' } | { outcome: 'hold' } | { outcome: 'block'; rule: ToolBlockRule; reason: string };

export interface ToolCallToJudge {
  /** As the model wrote it; messages quote it so. */
  name: string;
  key: ToolKey;
  args: string;
}

/**
 * A call's verdict when its name alone decides it, or undefined when only its
 * arguments can (the lane has a recipients rule). A stream relays a call's
 * argument pieces as they arrive only when this says pass.
 */
export function judgeToolName(lane: CompiledLane, call: Omit<ToolCallToJudge, 'args'>, offered: ReadonlySet<ToolKey>): ToolVerdict | undefined {
  const tool = call.name;
  const refused = toolRefusal(lane, call.key);
  if (refused === 'uncatalogued') return { outcome: 'block', rule: refused, reason: `tool "${tool}" is not in the tool catalogue, so lane ${lane.name} does not allow it` };
  if (refused) return { outcome: 'block', rule: refused, reason: `tool "${tool}" is not allowed in lane ${lane.name}` };
  // A model may only call what it was offered: anything else is not the app's to run.
  if (!offered.has(call.key)) return { outcome: 'block', rule: 'not_offered', reason: `tool "${tool}" was not offered by the request` };
  if (lane.tools.recipients) return undefined;
  if (lane.tools.requireApproval.has(call.key)) return { outcome: 'hold' };
  return { outcome: 'pass' };
}

/** `offered`: the request's tools after the lane's policy, by canonical name. */
export function judgeToolCall(lane: CompiledLane, call: ToolCallToJudge, offered: ReadonlySet<ToolKey>): ToolVerdict {
  const byName = judgeToolName(lane, call, offered);
  if (byName) return byName;
  const tool = call.name;
  const args = call.args;
  const rule = lane.tools.recipients;
  if (rule) {
    let parsed: unknown;
    try {
      parsed = args.trim() === '' ? {} : JSON.parse(args);
    } catch {
      return { outcome: 'block', rule: 'recipients', reason: `the arguments of "${tool}" are not valid JSON, so its recipients cannot be checked` };
    }
    const violation = recipientViolation(rule, parsed, { tool, lane: lane.name });
    if (violation) return { outcome: 'block', rule: 'recipients', reason: violation };
  }
  if (lane.tools.requireApproval.has(call.key)) return { outcome: 'hold' };
  return { outcome: 'pass' };
}

