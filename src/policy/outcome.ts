// What the lane policy decided for one request: on the context for the
// response guard, the audit record and explain. Apart from the policy stage
// so that the context never imports a stage module.
import type { CompiledLane, DetectorAction } from './compile.js';
import type { ToolBlockRule } from './tools.js';

export interface PolicyOutcome {
  lane: CompiledLane;
  /** Why the request is in this lane, in order. */
  reasons: string[];
  /** What fired: detector, action and how many matches (never the values). */
  findings: Array<{ detector: string; action: DetectorAction; count: number }>;
  redactions: number;
  /** placeholder -> original value, to restore in the response; kept in memory only. */
  restore: Map<string, string> | undefined;
  /** original value -> placeholder, when anything was redacted: an ingress redacts its own copy of the request (`ctx.native`) the same way. Memory only. */
  placeholders?: Map<string, string>;
  strippedTools: string[];
  blockedToolCalls: Array<{ tool: string; rule: ToolBlockRule; reason: string }>;
  approvals: Array<{ id: string; tool: string }>;
}
