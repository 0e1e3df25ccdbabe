// Usage is always known to the gateway: taken from the upstream when it
// reports it, counted with tiktoken only when it does not.
import type { ChatChunk, ChatRequest, Usage } from '../api/schemas.js';
import { countMessageTokens, countTextTokens, type CountOptions } from './tokens.js';

export function isUsage(value: unknown): value is Usage {
  const u = value as Usage | null | undefined;
  return !!u && typeof u.prompt_tokens === 'number' && typeof u.completion_tokens === 'number';
}

/**
 * What is wrong with a usage a provider reported, or undefined: absent and
 * partial usage is fine (the gateway counts it), but a count that is not a
 * finite number of zero or more (text, -5, 1e400) is a broken answer, and
 * it would be priced and charged.
 */
export function usageProblem(value: unknown): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'object' || Array.isArray(value)) return 'a usage that is not an object';
  const u = value as Record<string, unknown>;
  for (const field of ['prompt_tokens', 'completion_tokens', 'total_tokens']) {
    const v = u[field];
    if (v !== undefined && v !== null && !(typeof v === 'number' && Number.isFinite(v) && v >= 0)) return `a usage whose ${field} is not a count`;
  }
  return undefined;
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
