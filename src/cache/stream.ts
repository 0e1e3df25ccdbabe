// Streams and the cache's one canonical form, the non-streaming completion:
// a streamed answer is assembled into a completion as its chunks pass by,
// and a hit on a streaming request is replayed from a completion as chunks.
import type { ChatChunk, ChatCompletion, ChatChoice, ToolCall, Usage } from '../api/schemas.js';

interface ChoiceState {
  role: 'assistant';
  content: string;
  hasContent: boolean;
  refusal: string;
  calls: Map<number, ToolCall>;
  finishReason: string | null;
  logprobs: unknown[] | undefined;
}

/** Delta fields the assembler knows how to merge; any other non-empty one makes the stream unstorable. */
const KNOWN_DELTA = new Set(['role', 'content', 'refusal', 'tool_calls']);

/**
 * Collects a stream's chunks into a completion. `add` reads each chunk before
 * the caller passes it on (later code may change it in place). The result is
 * undefined when the stream cannot be stored faithfully: something it does
 * not understand, a choice without a finish reason, or no usage.
 */
export class ChunkAssembler {
  private id = '';
  private model = '';
  private created = 0;
  private fingerprint: string | null | undefined;
  private choices = new Map<number, ChoiceState>();
  private usage: Usage | undefined;
  private unsupported = false;

  add(chunk: ChatChunk): void {
    if (this.unsupported) return;
    if (!this.id && typeof chunk.id === 'string') this.id = chunk.id;
    if (!this.model && typeof chunk.model === 'string') this.model = chunk.model;
    if (!this.created && typeof chunk.created === 'number') this.created = chunk.created;
    if (chunk.system_fingerprint !== undefined && this.fingerprint === undefined) this.fingerprint = chunk.system_fingerprint as string | null;
    // The response guard's approvals and blocked calls are never cached.
    if (chunk.gateway !== undefined) this.unsupported = true;
    if (chunk.usage) this.usage = { ...chunk.usage };
    for (const choice of chunk.choices ?? []) {
      let state = this.choices.get(choice.index);
      if (!state) {
        state = { role: 'assistant', content: '', hasContent: false, refusal: '', calls: new Map(), finishReason: null, logprobs: undefined };
        this.choices.set(choice.index, state);
      }
      const delta = choice.delta ?? {};
      for (const key in delta) {
        const v = delta[key];
        if (!KNOWN_DELTA.has(key) && v !== undefined && v !== null && v !== '') this.unsupported = true;
      }
      if (typeof delta.content === 'string' && delta.content !== '') {
        state.content += delta.content;
        state.hasContent = true;
      }
      if (typeof delta.refusal === 'string') state.refusal += delta.refusal;
      for (const d of delta.tool_calls ?? []) {
        let call = state.calls.get(d.index);
        if (!call) state.calls.set(d.index, (call = { id: '', type: 'function', function: { name: '', arguments: '' } }));
        if (d.id) call.id = d.id;
        if (d.function?.name) call.function.name += d.function.name;
        if (d.function?.arguments) call.function.arguments += d.function.arguments;
      }
      const lp = choice.logprobs as { content?: unknown[] } | null | undefined;
      if (lp && Array.isArray(lp.content)) (state.logprobs ??= []).push(...lp.content);
      if (choice.finish_reason) state.finishReason = choice.finish_reason;
    }
  }

  result(): (ChatCompletion & { usage: Usage }) | undefined {
    if (this.unsupported || !this.usage || this.choices.size === 0 || !this.id) return undefined;
    const choices: ChatChoice[] = [];
    for (const [index, s] of [...this.choices].sort((a, b) => a[0] - b[0])) {
      if (!s.finishReason) return undefined;
      const calls = [...s.calls].sort((a, b) => a[0] - b[0]).map(([, c]) => c);
      if (calls.some((c) => !c.id || !c.function.name)) return undefined;
      const message: ChatChoice['message'] = { role: s.role, content: s.hasContent ? s.content : calls.length > 0 ? null : '' };
      if (s.refusal) message.refusal = s.refusal;
      if (calls.length > 0) message.tool_calls = calls;
      const choice: ChatChoice = { index, message, finish_reason: s.finishReason };
      if (s.logprobs) choice.logprobs = { content: s.logprobs };
      choices.push(choice);
    }
    const completion: ChatCompletion & { usage: Usage } = { id: this.id, object: 'chat.completion', created: this.created, model: this.model, choices, usage: this.usage };
    if (this.fingerprint !== undefined) completion.system_fingerprint = this.fingerprint;
    return completion;
  }
}

/**
 * A completion as a valid chunk stream: per choice, one chunk with the role
 * and the whole content (and its logprobs), one with the tool calls, one with
 * the finish reason; then the usage chunk (writeStream shows it only to
 * clients that asked with stream_options.include_usage).
 */
export function completionToChunks(completion: ChatCompletion): ChatChunk[] {
  const base = {
    id: completion.id,
    object: 'chat.completion.chunk' as const,
    created: completion.created,
    model: completion.model,
    ...(completion.system_fingerprint !== undefined ? { system_fingerprint: completion.system_fingerprint } : {}),
  };
  const chunks: ChatChunk[] = [];
  for (const choice of completion.choices) {
    const m = choice.message;
    const first: ChatChunk['choices'][number] = { index: choice.index, delta: { role: 'assistant', content: m.content ?? '' }, finish_reason: null };
    if (m.refusal) first.delta.refusal = m.refusal;
    const lp = choice.logprobs as { content?: unknown[] } | null | undefined;
    if (lp?.content) first.logprobs = { content: lp.content };
    chunks.push({ ...base, choices: [first] });
    if (m.tool_calls?.length) {
      const tool_calls = m.tool_calls.map((c, i) => ({ index: i, id: c.id, type: 'function' as const, function: { name: c.function.name, arguments: c.function.arguments } }));
      chunks.push({ ...base, choices: [{ index: choice.index, delta: { tool_calls }, finish_reason: null }] });
    }
    chunks.push({ ...base, choices: [{ index: choice.index, delta: {}, finish_reason: choice.finish_reason }] });
  }
  if (completion.usage) chunks.push({ ...base, choices: [], usage: { ...completion.usage } });
  return chunks;
}

export async function* replayChunks(chunks: ChatChunk[]): AsyncGenerator<ChatChunk> {
  yield* chunks;
}
