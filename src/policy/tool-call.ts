// How a lane judges one tool call an agent makes through the MCP gateway,
// arguments and all: detectors over every string argument (block, redact,
// escalate to a stricter lane whose rules then apply), then the tool's name
// against the lane's lists, the recipients rule, the path rule, and
// require_approval. Pure: the gateway (mcp/govern.ts) acts on the verdict,
// `lanegate explain --tool` prints it.
import type { CompiledConfig } from '../config/compile.js';
import type { CompiledLane, DetectorAction } from './compile.js';
import { pathViolation } from './paths.js';
import { recipientViolation } from './recipients.js';
import { redactSlot, scanWithEscalation, type SlotFindings, type TextSlot } from './scan.js';
import { toolKey, type ToolKey } from './tool-name.js';

/**
 * Whether the lane's lists refuse an upstream MCP tool. Such a tool is
 * catalogued by its server listing it (the endpoint only routes names its
 * servers list), not by the policy files' `tools:`, so only `allow` and
 * `deny` decide, as the endpoint's tools/list filter does (l-core's
 * mcp/lane.ts mcpToolAllowed: keep the two the same).
 */
export function mcpToolRefused(lane: CompiledLane, key: ToolKey): boolean {
  const t = lane.tools;
  return t.deny.has(key) || (t.allow !== undefined && !t.allow.has(key));
}

/** What fired, how often, on the call's arguments or its result (never the values). */
export interface Finding {
  detector: string;
  action: DetectorAction;
  count: number;
  on: 'arguments' | 'result';
}


/** What the policy makes of one call, before any state changes: explain shows it, governToolCall acts on it. */
export interface ToolCallJudgement {
  lane: CompiledLane;
  reasons: string[];
  canonical: ToolKey;
  verdict: { outcome: 'refuse'; rule: string; message: string } | { outcome: 'hold' } | { outcome: 'execute' };
  /** The arguments with the lane's redactions applied. */
  args: Record<string, unknown>;
  redactions: number;
  findings: Finding[];
  /** A detector blocked the call: its arguments must not be kept anywhere. */
  blocked: boolean;
}

/** Every string in the arguments, at any depth, as a slot detectors read and redaction rewrites. */
export function argumentSlots(value: unknown, param: string, out: TextSlot[], depth = 0): void {
  if (depth > 64 || value === null || typeof value !== 'object') return;
  const entries: Array<[string | number, unknown]> = Array.isArray(value) ? value.map((v, i) => [i, v]) : Object.entries(value);
  for (const [k, v] of entries) {
    const at = typeof k === 'number' ? `${param}[${k}]` : `${param}.${k}`;
    if (typeof v === 'string') {
      const holder = value as Record<string | number, unknown>;
      const slot: TextSlot = { param: at, text: v, set: (t) => ((holder[k] = t), (slot.text = t)) };
      out.push(slot);
    } else argumentSlots(v, at, out, depth + 1);
  }
}

export function countFindings(scanned: SlotFindings[], on: Finding['on']): Finding[] {
  const counts = new Map<string, Finding>();
  for (const s of scanned) {
    for (const f of s.findings) {
      const k = `${f.detector}\u0000${f.rule.action}`;
      const e = counts.get(k) ?? { detector: f.detector, action: f.rule.action, count: 0, on };
      e.count++;
      counts.set(k, e);
    }
  }
  return [...counts.values()];
}

/**
 * Judges a call against the lane: detectors on the arguments first (they may
 * move the call to a stricter lane, whose rules then apply), then the tool's
 * name, recipients and paths, then require_approval. Pure: nothing is held,
 * counted or recorded.
 */
export function judgeMcpToolCall(config: CompiledConfig, laneName: string, call: { name: string; args: Record<string, unknown> }): ToolCallJudgement {
  const policies = config.policies;
  const start = policies.lanes.get(laneName);
  if (!start) throw new Error(`unknown lane "${laneName}"`);
  let lane: CompiledLane = start;
  const reasons = [`the session is in ${lane.name}`];
  const canonical = toolKey(call.name);
  const args = structuredClone(call.args);
  const slots: TextSlot[] = [];
  argumentSlots(args, 'arguments', slots);

  const escalated = scanWithEscalation(policies, lane, slots, reasons);
  const scanned = escalated.scanned;
  lane = escalated.lane;
  const findings = countFindings(scanned, 'arguments');
  const base = { lane, reasons, canonical, args, redactions: 0, findings, blocked: false };
  const refuse = (rule: string, message: string): ToolCallJudgement => ({ ...base, verdict: { outcome: 'refuse', rule, message } });

  for (const s of scanned) {
    const hit = s.findings.find((f) => f.rule.action === 'block');
    if (hit) {
      return {
        ...refuse(`detector:${hit.detector}`, `Blocked by lane "${lane.name}": the ${hit.detector} detector matched in ${s.slot.param} of "${call.name}". Remove that data, or call it from a lane that allows it.`),
        blocked: true,
      };
    }
  }
  if (mcpToolRefused(lane, canonical)) return refuse('denied', `Tool "${call.name}" is not allowed in lane ${lane.name}.`);
  const names = { tool: call.name, lane: lane.name };
  if (lane.tools.recipients) {
    const why = recipientViolation(lane.tools.recipients, args, names);
    if (why) return refuse('recipients', `${why}.`);
  }
  if (lane.tools.paths) {
    const why = pathViolation(lane.tools.paths, args, names);
    if (why) return refuse('paths', `${why}.`);
  }
  let redactions = 0;
  if (scanned.length > 0) {
    const placeholders = new Map<string, string>();
    const counters = new Map<string, number>();
    for (const s of scanned) redactions += redactSlot(s.slot, s.findings, placeholders, counters);
  }
  return { ...base, redactions, verdict: lane.tools.requireApproval.has(canonical) ? { outcome: 'hold' } : { outcome: 'execute' } };
}

