// Pipeline stage: decides the request's lane and enforces the lane's data
// rules before anything leaves the gateway. The key gives the starting lane;
// `x-gateway-lane` and detectors can only make it stricter. Then blocks,
// redactions, required metadata and the tools the app offers.
import { GatewayError } from '../errors.js';
import type { RequestContext } from '../pipeline/context.js';
import type { KeyInfo } from '../config/compile.js';
import { toolRefusal, type CompiledLane, type CompiledPolicies, type DetectorAction } from './compile.js';
import { chatSlots, embeddingSlots, redactSlot, scanWithEscalation } from './scan.js';
import type { PolicyOutcome } from './outcome.js';
import { toolKey } from './tool-name.js';

/**
 * The lane a request starts in: its key's, or the stricter one it asks for
 * with `x-gateway-lane` (every ingress, MCP included, takes the same rule).
 */
export function startingLane(policies: CompiledPolicies, key: KeyInfo, asked: string | string[] | undefined): { lane: CompiledLane; reasons: string[] } {
  let lane = policies.lanes.get(key.lane)!;
  const reasons = [`key "${key.id}" starts in ${lane.name}`];
  if (typeof asked === 'string' && asked !== '') {
    const target = policies.lanes.get(asked);
    const known = policies.order.join(', ');
    if (!target) throw new GatewayError('lane_violation', `The lane asked for in x-gateway-lane does not exist (lanes: ${known}).`);
    if (!key.lanes.has(asked)) {
      throw new GatewayError('lane_violation', `Your key may not use lane "${asked}" (it may use: ${[...key.lanes].join(', ')}).`);
    }
    if (target.rank < lane.rank) {
      throw new GatewayError('lane_violation', `Lane "${asked}" is less strict than your key's lane "${lane.name}"; a request can only move to a stricter lane.`);
    }
    if (target !== lane) {
      lane = target;
      reasons.push(`x-gateway-lane asked for ${asked}`);
    }
  }
  return { lane, reasons };
}

export function applyLanePolicy(ctx: RequestContext): void {
  const policies = ctx.config.policies;
  const start = startingLane(policies, ctx.key!, ctx.headers['x-gateway-lane']);
  let lane = start.lane;
  const reasons = start.reasons;

  const slots = ctx.chat ? chatSlots(ctx.chat) : ctx.embeddings ? embeddingSlots(ctx.embeddings) : [];
  // Detectors may raise the lane; the stricter lane's own detectors then run.
  const escalated = scanWithEscalation(policies, lane, slots, reasons);
  const scanned = escalated.scanned;
  lane = escalated.lane;

  const counts = new Map<string, { detector: string; action: DetectorAction; count: number }>();
  // Recorded before anything can refuse the request, so audit and explain see the lane.
  const outcome: PolicyOutcome = { lane, reasons, findings: [], redactions: 0, restore: undefined, strippedTools: [], blockedToolCalls: [], approvals: [] };
  ctx.lane = lane.name;
  ctx.policy = outcome;
  ctx.responseHeaders['x-gateway-lane'] = lane.name;
  for (const s of scanned) {
    for (const f of s.findings) {
      const k = `${f.detector}\u0000${f.rule.action}`;
      const entry = counts.get(k) ?? { detector: f.detector, action: f.rule.action, count: 0 };
      entry.count++;
      counts.set(k, entry);
      if (f.rule.action === 'block') {
        outcome.findings = [...counts.values()];
        ctx.services.metrics.policyActions.labels(lane.name, f.detector, 'block').inc();
        throw new GatewayError(
          'policy_blocked',
          `Blocked by lane "${lane.name}": the ${f.detector} detector matched in ${s.slot.param}. Remove that data, or send it through a lane that allows it.`,
          { param: s.slot.param },
        );
      }
    }
  }

  let redactions = 0;
  let restore: Map<string, string> | undefined;
  if (scanned.length > 0) {
    const placeholders = new Map<string, string>();
    const counters = new Map<string, number>();
    for (const s of scanned) redactions += redactSlot(s.slot, s.findings, placeholders, counters);
    if (redactions > 0) outcome.placeholders = placeholders;
    if (redactions > 0 && lane.restoreRedactions) restore = new Map([...placeholders].map(([value, placeholder]) => [placeholder, value]));
  }
  for (const c of counts.values()) ctx.services.metrics.policyActions.labels(lane.name, c.detector, c.action).inc(c.count);
  outcome.findings = [...counts.values()];
  outcome.redactions = redactions;

  for (const field of lane.requiredMetadata) {
    const inBody = ctx.chat?.metadata?.[field];
    const inHeader = ctx.headers[`x-gateway-meta-${field}`];
    if (!inBody && !inHeader) {
      throw new GatewayError(
        'invalid_request',
        `Lane "${lane.name}" requires request metadata "${field}": send it as metadata.${field} in the body or as the x-gateway-meta-${field} header.`,
        { param: `metadata.${field}` },
      );
    }
  }

  outcome.findings = [...counts.values()];
  outcome.redactions = redactions;
  outcome.restore = restore;
  outcome.strippedTools = checkOfferedTools(ctx, lane);
}

function checkOfferedTools(ctx: RequestContext, lane: CompiledLane): string[] {
  const chat = ctx.chat;
  if (!chat?.tools?.length) return [];
  const refused: string[] = [];
  const uncatalogued: string[] = [];
  for (const t of chat.tools) {
    const why = toolRefusal(lane, toolKey(t.function.name));
    if (why) refused.push(t.function.name);
    if (why === 'uncatalogued') uncatalogued.push(t.function.name);
  }
  if (refused.length === 0) return [];
  if (lane.tools.onDenied === 'reject') {
    const quoted = (names: string[]) => names.map((d) => `"${d}"`).join(', ');
    const why = uncatalogued.length > 0 ? ` (${quoted(uncatalogued)} ${uncatalogued.length > 1 ? 'are' : 'is'} not in the tool catalogue)` : '';
    throw new GatewayError('lane_violation', `Lane "${lane.name}" does not allow the tool${refused.length > 1 ? 's' : ''} ${quoted(refused)}${why}. Remove ${refused.length > 1 ? 'them' : 'it'} from tools.`, {
      param: 'tools',
    });
  }
  const refusedSet = new Set(refused);
  chat.tools = chat.tools.filter((t) => !refusedSet.has(t.function.name));
  const forced = chat.tool_choice;
  if (chat.tools.length === 0) {
    delete chat.tools;
    delete chat.tool_choice;
  } else if (forced && typeof forced === 'object' && toolRefusal(lane, toolKey(forced.function.name))) {
    delete chat.tool_choice;
  }
  return refused;
}
