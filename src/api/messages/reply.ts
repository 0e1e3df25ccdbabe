// A chat completion as an Anthropic Message, and Anthropic's usage and stop
// reasons, shared with the stream translator.
import { randomHex } from '../random-id.js';
import type { ChatCompletion, ThinkingBlock, Usage } from '../schemas.js';

export interface AnthropicUsageOut {
  input_tokens: number;
  output_tokens: number;
  cache_creation_input_tokens: number;
  cache_read_input_tokens: number;
}

export type AnthropicContent = { type: 'text'; text: string } | { type: 'tool_use'; id: string; name: string; input: Record<string, unknown> } | ThinkingBlock;

export type StopReason = 'end_turn' | 'max_tokens' | 'stop_sequence' | 'tool_use' | 'refusal';

export interface AnthropicMessageOut {
  id: string;
  type: 'message';
  role: 'assistant';
  model: string;
  content: AnthropicContent[];
  stop_reason: StopReason | null;
  stop_sequence: string | null;
  usage: AnthropicUsageOut;
}

export function createMessageId(): string {
  return `msg_${randomHex(24)}`;
}

// Chat counts cached prompt tokens inside prompt_tokens; Anthropic counts
// them apart from input_tokens (the inverse of providers/anthropic/response.ts).
export function anthropicUsage(u: Usage | null | undefined): AnthropicUsageOut {
  const details = u?.prompt_tokens_details;
  const read = typeof details?.cached_tokens === 'number' ? details.cached_tokens : 0;
  const write = typeof details?.cache_write_tokens === 'number' ? details.cache_write_tokens : 0;
  return {
    input_tokens: Math.max(0, (u?.prompt_tokens ?? 0) - read - write),
    output_tokens: u?.completion_tokens ?? 0,
    cache_creation_input_tokens: write,
    cache_read_input_tokens: read,
  };
}

export function stopReason(finishReason: string | null | undefined): StopReason {
  if (finishReason === 'length') return 'max_tokens';
  if (finishReason === 'tool_calls' || finishReason === 'function_call') return 'tool_use';
  if (finishReason === 'content_filter') return 'refusal';
  return 'end_turn';
}

/** A model's arguments that are not a JSON object still reach the client, as `{}` would lose them silently. */
export function toolInput(args: string): Record<string, unknown> {
  try {
    const parsed: unknown = args.trim() ? JSON.parse(args) : {};
    if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) return parsed as Record<string, unknown>;
  } catch {
    // falls through
  }
  return { _raw_arguments: args };
}

export function chatToMessage(completion: ChatCompletion, options: { model: string; id?: string }): AnthropicMessageOut {
  const choice = completion.choices[0];
  const content: AnthropicContent[] = [];
  // Thinking first, as Anthropic answers it, unchanged (its signature covers it): an Anthropic upstream's only.
  const thinking = choice?.message.thinking_blocks;
  if (Array.isArray(thinking)) content.push(...(thinking as ThinkingBlock[]));
  const text = choice?.message.content;
  if (typeof text === 'string' && text !== '') content.push({ type: 'text', text });
  else if (typeof choice?.message.refusal === 'string') content.push({ type: 'text', text: choice.message.refusal });
  for (const call of choice?.message.tool_calls ?? []) content.push({ type: 'tool_use', id: call.id, name: call.function.name, input: toolInput(call.function.arguments) });
  return {
    id: options.id ?? createMessageId(),
    type: 'message',
    role: 'assistant',
    model: options.model,
    content,
    stop_reason: stopReason(choice?.finish_reason),
    stop_sequence: null,
    usage: anthropicUsage(completion.usage),
  };
}
