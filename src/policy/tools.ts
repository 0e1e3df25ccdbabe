// The tool-call guard: every call a model makes is checked against the lane
// before the app sees it. Denied tools and recipient-rule violations are
// blocked; tools that need approval are held.
import { toolAllowed, type CompiledLane } from './compile.js';

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
    const recipients: string[] = [];
    if (parsed && typeof parsed === 'object') {
      for (const field of rule.fields) collectAddresses((parsed as Record<string, unknown>)[field], recipients);
    }
    if (rule.max !== undefined && recipients.length > rule.max) {
      return { outcome: 'block', reason: `"${tool}" names ${recipients.length} recipients; lane ${lane.name} allows at most ${rule.max}` };
    }
    for (const r of recipients) {
      if (!recipientAllowed(r, rule.allow_domains, rule.allow_addresses)) {
        const domain = r.includes('@') ? r.slice(r.lastIndexOf('@') + 1) : '(no domain)';
        return { outcome: 'block', reason: `"${tool}" sends to a recipient at ${domain}, which lane ${lane.name} does not allow` };
      }
    }
  }
  if (lane.tools.requireApproval.has(tool)) return { outcome: 'hold' };
  return { outcome: 'pass' };
}

/** Does this lane's guard have anything to check? If not, responses skip it. */
export function laneGuardsTools(lane: CompiledLane): boolean {
  const t = lane.tools;
  return t.allow !== undefined || t.deny.size > 0 || t.requireApproval.size > 0 || t.recipients !== undefined;
}

function collectAddresses(value: unknown, out: string[]): void {
  if (typeof value === 'string') {
    for (const part of value.split(/[,;]/)) {
      const trimmed = part.trim();
      if (!trimmed) continue;
      // "Name <a@b.c>" -> a@b.c
      const angle = /<([^<>]+)>/.exec(trimmed);
      out.push((angle ? angle[1]! : trimmed).toLowerCase());
    }
  } else if (Array.isArray(value)) {
    for (const v of value) collectAddresses(v, out);
  } else if (value && typeof value === 'object') {
    const o = value as Record<string, unknown>;
    collectAddresses(o.email ?? o.address, out);
  }
}

function recipientAllowed(address: string, domains: readonly string[], addresses: readonly string[]): boolean {
  if (addresses.includes(address)) return true;
  const at = address.lastIndexOf('@');
  if (at < 1) return false;
  const domain = address.slice(at + 1);
  return domains.some((d) => (d.startsWith('*.') ? domain.endsWith(d.slice(1)) : domain === d));
}
