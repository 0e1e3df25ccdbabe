// Finds every piece of text a request carries to the model: each message's
// content and text parts, tool-call arguments, tool results, embedding
// inputs. Each is a slot that detectors read and redaction may rewrite.
import type { ChatRequest, EmbeddingsRequest } from '../api/schemas.js';
import { findingsToOriginal, normalizeText, type Finding } from './detectors.js';
import type { CompiledLane, CompiledPolicies, LaneDetector } from './compile.js';

export interface TextSlot {
  /** Where it is, as an OpenAI-style param path, for error messages. */
  param: string;
  text: string;
  set(text: string): void;
}

export function chatSlots(chat: ChatRequest): TextSlot[] {
  const slots: TextSlot[] = [];
  chat.messages.forEach((m, i) => {
    if (typeof m.content === 'string') {
      slots.push({ param: `messages[${i}].content`, text: m.content, set: (t) => (m.content = t) });
    } else if (Array.isArray(m.content)) {
      m.content.forEach((part, j) => {
        if (part.type === 'text' && typeof part.text === 'string') {
          const p = part as { text: string };
          slots.push({ param: `messages[${i}].content[${j}].text`, text: p.text, set: (t) => (p.text = t) });
        }
      });
    }
    m.tool_calls?.forEach((call, j) => {
      const fn = call.function;
      slots.push({ param: `messages[${i}].tool_calls[${j}].function.arguments`, text: fn.arguments, set: (t) => (fn.arguments = t) });
    });
  });
  return slots;
}

export function embeddingSlots(request: EmbeddingsRequest): TextSlot[] {
  const input = request.input;
  if (typeof input === 'string') return [{ param: 'input', text: input, set: (t) => (request.input = t) }];
  if (input.length > 0 && typeof input[0] === 'string') {
    const list = input as string[];
    return list.map((text, i) => ({ param: `input[${i}]`, text, set: (t) => (list[i] = t) }));
  }
  return []; // token arrays carry no text to inspect
}

export interface SlotFindings {
  slot: TextSlot;
  findings: Array<Finding & { rule: LaneDetector }>;
}

/**
 * Runs the lane's detectors over every slot. Linear in the total text size.
 * Detectors read each slot's normalised text (detectors/normalize.ts), once
 * per slot for all of them; findings come back as spans of the slot's own
 * text, which is what redaction replaces.
 */
export function scanSlots(slots: readonly TextSlot[], detectors: readonly LaneDetector[]): SlotFindings[] {
  const out: SlotFindings[] = [];
  if (detectors.length === 0) return out;
  const buffer: Finding[] = [];
  for (const slot of slots) {
    if (slot.text.length === 0) continue;
    const view = normalizeText(slot.text);
    const findings: SlotFindings['findings'] = [];
    for (const rule of detectors) {
      buffer.length = 0;
      rule.detector.scan(view.text, buffer);
      findingsToOriginal(view, buffer);
      for (const f of buffer) findings.push({ ...f, rule });
    }
    if (findings.length > 0) out.push({ slot, findings });
  }
  return out;
}

/**
 * Replaces redacted spans with placeholders like `[EMAIL_1]`. The same value
 * gets the same placeholder throughout a request, so the model can still
 * refer to it consistently.
 */
export function redactSlot(slot: TextSlot, findings: SlotFindings['findings'], placeholders: Map<string, string>, counters: Map<string, number>): number {
  const spans = findings.filter((f) => f.rule.action === 'redact').sort((a, b) => a.start - b.start || b.end - a.end);
  if (spans.length === 0) return 0;
  let out = '';
  let at = 0;
  let count = 0;
  for (const f of spans) {
    if (f.start < at) continue; // overlaps an earlier span: already covered
    const value = slot.text.slice(f.start, f.end);
    let placeholder = placeholders.get(value);
    if (!placeholder) {
      const n = (counters.get(f.detector) ?? 0) + 1;
      counters.set(f.detector, n);
      placeholder = `[${f.detector.toUpperCase()}_${n}]`;
      placeholders.set(value, placeholder);
    }
    out += slot.text.slice(at, f.start) + placeholder;
    at = f.end;
    count++;
  }
  slot.set(out + slot.text.slice(at));
  return count;
}

/**
 * Runs the lane's detectors; while one escalates, moves to the strictest lane
 * they name and runs that lane's detectors instead (a lane only ever rises,
 * so this ends within as many rounds as there are lanes). Each move is added
 * to `reasons`. Model requests (lane.ts) and MCP tool calls (tool-call.ts)
 * escalate alike.
 */
export function scanWithEscalation(
  policies: CompiledPolicies,
  start: CompiledLane,
  slots: readonly TextSlot[],
  reasons: string[],
): { lane: CompiledLane; scanned: SlotFindings[] } {
  let lane = start;
  let scanned: SlotFindings[] = [];
  for (let round = 0; round <= policies.order.length; round++) {
    scanned = scanSlots(slots, lane.detectors);
    let next: CompiledLane = lane;
    let cause = '';
    for (const s of scanned) {
      for (const f of s.findings) {
        if (f.rule.action !== 'escalate') continue;
        const target = policies.lanes.get(f.rule.lane!)!;
        if (target.rank > next.rank) {
          next = target;
          cause = f.detector;
        }
      }
    }
    if (next === lane) break;
    reasons.push(`detector "${cause}" raised the lane from ${lane.name} to ${next.name}`);
    lane = next;
  }
  return { lane, scanned };
}
