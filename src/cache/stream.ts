// Streams and the cache's one canonical form, the non-streaming completion:
// a streamed answer is assembled into a completion as its chunks pass by
// (api/assemble.ts, storable()), and a hit on a streaming request is
// replayed from a completion as chunks.
import type { ChatChunk, ChatCompletion } from '../api/schemas.js';

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
