// The one place a streamed answer is put back together. The server's stream
// writer feeds each chunk as it is sent (after the reply stages: metering,
// the tool-call guard and restored redactions) into the request's one
// assembler (ctx.assembled), and its readers take the view they need:
//   result()    the message the app ended up with, for the audit record, the
//               trace and shadow comparisons (lenient: whatever arrived);
//   storable()  the completion the cache may store and replay (strict:
//               undefined unless the stream can be replayed faithfully).
// The tool-call guard merges the upstream's tool-call pieces with the same
// function (mergeToolCallPiece), before it judges them.
import type { ChatChoice, ChatChunk, ChatCompletion, ToolCall, ToolCallDelta, Usage } from './schemas.js';

/** A tool call as its pieces arrive: the id, the name and the arguments so far. */
export interface ToolCallParts {
  id: string;
  name: string;
  args: string;
}

/** Adds one streamed piece of a tool call: the id when it comes, the name's and the arguments' text appended. */
export function mergeToolCallPiece(call: ToolCallParts, d: ToolCallDelta): void {
  if (d.id) call.id = d.id;
  if (d.function?.name) call.name += d.function.name;
  if (d.function?.arguments) call.args += d.function.arguments;
}

interface ChoiceParts {
  content: string;
  hasContent: boolean;
  refusal: string;
  calls: Map<number, ToolCallParts>;
  finish: string | null;
  logprobs: unknown[] | undefined;
}

/** Delta fields a completion can carry; any other non-empty one makes the stream unstorable. */
const KNOWN_DELTA = new Set(['role', 'content', 'refusal', 'tool_calls']);

export class StreamAssembler {
  private head: ChatChunk | undefined;
  // The cache's view takes the first non-empty id, model and creation time.
  private id = '';
  private model = '';
  private created = 0;
  private fingerprint: string | null | undefined;
  private usage: Usage | undefined;
  private gateway: unknown;
  /** Something a completion cannot carry (an unknown delta field, the guard's own outcome): not storable. */
  private unsupported = false;
  private choices = new Map<number, ChoiceParts>();
  // The record and the trace both ask for the message: assemble it once.
  private message: ChatCompletion | undefined;

  add(chunk: ChatChunk): void {
    this.message = undefined;
    this.head ??= chunk;
    if (!this.id && typeof chunk.id === 'string') this.id = chunk.id;
    if (!this.model && typeof chunk.model === 'string') this.model = chunk.model;
    if (!this.created && typeof chunk.created === 'number') this.created = chunk.created;
    if (chunk.system_fingerprint !== undefined && this.fingerprint === undefined) this.fingerprint = chunk.system_fingerprint as string | null;
    if (chunk.usage) this.usage = { ...chunk.usage };
    if (chunk.gateway !== undefined) {
      // The response guard's approvals and blocked calls are recorded, never cached.
      this.unsupported = true;
      if (chunk.gateway) this.gateway = mergeGateway(this.gateway, chunk.gateway);
    }
    for (const choice of chunk.choices ?? []) {
      let parts = this.choices.get(choice.index);
      if (!parts) this.choices.set(choice.index, (parts = { content: '', hasContent: false, refusal: '', calls: new Map(), finish: null, logprobs: undefined }));
      const delta = choice.delta;
      if (delta) {
        for (const key in delta) {
          const v = delta[key];
          if (!KNOWN_DELTA.has(key) && v !== undefined && v !== null && v !== '') this.unsupported = true;
        }
        if (typeof delta.content === 'string' && delta.content !== '') {
          parts.content += delta.content;
          parts.hasContent = true;
        }
        if (typeof delta.refusal === 'string') parts.refusal += delta.refusal;
        if (delta.tool_calls) {
          for (const d of delta.tool_calls) {
            let call = parts.calls.get(d.index);
            if (!call) parts.calls.set(d.index, (call = { id: '', name: '', args: '' }));
            mergeToolCallPiece(call, d);
          }
        }
      }
      const lp = choice.logprobs as { content?: unknown[] } | null | undefined;
      if (lp && Array.isArray(lp.content)) (parts.logprobs ??= []).push(...lp.content);
      if (choice.finish_reason) parts.finish = choice.finish_reason;
    }
  }

  /** The message the app ended up with; undefined when no chunk arrived. */
  result(): ChatCompletion | undefined {
    const head = this.head;
    if (!head) return undefined;
    if (this.message) return this.message;
    const out: ChatCompletion = {
      id: head.id,
      object: 'chat.completion',
      created: head.created,
      model: head.model,
      choices: [...this.choices.entries()]
        .sort((a, b) => a[0] - b[0])
        .map(([index, parts]) => {
          const message: ChatChoice['message'] = { role: 'assistant', content: parts.hasContent ? parts.content : null };
          if (parts.refusal) message.refusal = parts.refusal;
          if (parts.calls.size > 0) message.tool_calls = toolCalls(parts);
          return { index, message, finish_reason: parts.finish };
        }),
    };
    if (this.usage) out.usage = this.usage;
    if (this.gateway) out.gateway = this.gateway;
    return (this.message = out);
  }

  /**
   * The completion a cache may store, or undefined when the stream cannot be
   * replayed faithfully: something a completion cannot carry, a choice
   * without a finish reason or a tool call without id or name, or no usage.
   */
  storable(): (ChatCompletion & { usage: Usage }) | undefined {
    if (this.unsupported || !this.usage || this.choices.size === 0 || !this.id) return undefined;
    const choices: ChatChoice[] = [];
    for (const [index, s] of [...this.choices].sort((a, b) => a[0] - b[0])) {
      if (!s.finish) return undefined;
      const calls = toolCalls(s);
      if (calls.some((c) => !c.id || !c.function.name)) return undefined;
      const message: ChatChoice['message'] = { role: 'assistant', content: s.hasContent ? s.content : calls.length > 0 ? null : '' };
      if (s.refusal) message.refusal = s.refusal;
      if (calls.length > 0) message.tool_calls = calls;
      const choice: ChatChoice = { index, message, finish_reason: s.finish };
      if (s.logprobs) choice.logprobs = { content: s.logprobs };
      choices.push(choice);
    }
    const completion: ChatCompletion & { usage: Usage } = { id: this.id, object: 'chat.completion', created: this.created, model: this.model, choices, usage: { ...this.usage } };
    if (this.fingerprint !== undefined) completion.system_fingerprint = this.fingerprint;
    return completion;
  }
}

function toolCalls(parts: ChoiceParts): ToolCall[] {
  return [...parts.calls.entries()].sort((a, b) => a[0] - b[0]).map(([, c]): ToolCall => ({ id: c.id, type: 'function', function: { name: c.name, arguments: c.args } }));
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
