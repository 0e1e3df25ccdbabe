// Puts a streamed answer back together as one chat.completion for the audit
// record: streams are recorded as the message the app ended up with, never as
// chunks. It sees each chunk as it is sent (after the tool-call guard and
// restored redactions), costs a few string appends per chunk, and exists only
// while the audit trail is on.
import type { ChatChunk, ChatCompletion, ToolCall, Usage } from '../api/schemas.js';

interface ChoiceParts {
  content: string[];
  refusal: string[];
  calls: Map<number, { id: string; name: string; args: string }>;
  finish: string | null;
}

export interface MessageAssembler {
  add(chunk: ChatChunk): void;
  /** The assembled completion; undefined when no chunk arrived. */
  result(): ChatCompletion | undefined;
}

export function createMessageAssembler(): MessageAssembler {
  let head: ChatChunk | undefined;
  let usage: Usage | undefined;
  let gateway: unknown;
  const choices = new Map<number, ChoiceParts>();
  // The record and the trace both ask for it: assemble once.
  let assembled: ChatCompletion | undefined;

  return {
    add(chunk) {
      assembled = undefined;
      head ??= chunk;
      if (chunk.usage) usage = chunk.usage;
      if (chunk.gateway) gateway = mergeGateway(gateway, chunk.gateway);
      for (const choice of chunk.choices) {
        let parts = choices.get(choice.index);
        if (!parts) choices.set(choice.index, (parts = { content: [], refusal: [], calls: new Map(), finish: null }));
        const delta = choice.delta;
        if (delta) {
          if (typeof delta.content === 'string' && delta.content) parts.content.push(delta.content);
          if (typeof delta.refusal === 'string' && delta.refusal) parts.refusal.push(delta.refusal);
          if (delta.tool_calls) {
            for (const d of delta.tool_calls) {
              let call = parts.calls.get(d.index);
              if (!call) parts.calls.set(d.index, (call = { id: '', name: '', args: '' }));
              if (d.id) call.id = d.id;
              if (d.function?.name) call.name += d.function.name;
              if (d.function?.arguments) call.args += d.function.arguments;
            }
          }
        }
        if (choice.finish_reason) parts.finish = choice.finish_reason;
      }
    },
    result() {
      if (!head) return undefined;
      if (assembled) return assembled;
      const out: ChatCompletion = {
        id: head.id,
        object: 'chat.completion',
        created: head.created,
        model: head.model,
        choices: [...choices.entries()]
          .sort((a, b) => a[0] - b[0])
          .map(([index, parts]) => {
            const message: ChatCompletion['choices'][number]['message'] = { role: 'assistant', content: parts.content.length > 0 ? parts.content.join('') : null };
            if (parts.refusal.length > 0) message.refusal = parts.refusal.join('');
            if (parts.calls.size > 0) {
              message.tool_calls = [...parts.calls.entries()]
                .sort((a, b) => a[0] - b[0])
                .map(([, c]): ToolCall => ({ id: c.id, type: 'function', function: { name: c.name, arguments: c.args } }));
            }
            return { index, message, finish_reason: parts.finish };
          }),
      };
      if (usage) out.usage = usage;
      if (gateway) out.gateway = gateway;
      return (assembled = out);
    },
  };
}

/** The guard may send approvals and blocked calls in several chunks (one per choice). */
function mergeGateway(into: unknown, next: unknown): unknown {
  if (!into || typeof into !== 'object' || !next || typeof next !== 'object') return next;
  const a = into as Record<string, unknown>;
  const b = next as Record<string, unknown>;
  const out: Record<string, unknown> = { ...a };
  for (const [k, v] of Object.entries(b)) out[k] = Array.isArray(a[k]) && Array.isArray(v) ? [...(a[k] as unknown[]), ...v] : v;
  return out;
}
