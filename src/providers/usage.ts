// Usage is always known to the gateway: taken from the upstream when it
// reports it, counted with tiktoken only when it does not.
import type { ChatChunk, ChatRequest, Usage } from '../api/schemas.js';
import { countMessageTokens, countTextTokens, type CountOptions } from './tokens.js';

export function isUsage(value: unknown): value is Usage {
  const u = value as Usage | null | undefined;
  return !!u && typeof u.prompt_tokens === 'number' && typeof u.completion_tokens === 'number';
}

export function normaliseUsage(u: Usage): Usage {
  return { ...u, total_tokens: typeof u.total_tokens === 'number' ? u.total_tokens : u.prompt_tokens + u.completion_tokens };
}

export async function countUsage(request: ChatRequest, completionText: string, options: CountOptions = {}): Promise<Usage> {
  const prompt = await countMessageTokens(request.messages, Infinity, options);
  const completion = await countTextTokens(completionText, options);
  return { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion };
}

/** The completion text a stream chunk carries, as a count of it sees it: content, tool names and arguments. */
export function deltaText(chunk: ChatChunk): string {
  let text = '';
  for (const choice of chunk.choices) {
    const d = choice.delta;
    if (!d) continue;
    if (d.content) text += d.content;
    if (d.tool_calls) for (const call of d.tool_calls) text += (call.function?.name ?? '') + (call.function?.arguments ?? '');
  }
  return text;
}
