// An Anthropic message in OpenAI's chat.completion shape.
import type { ChatCompletion, ChatRequest, ThinkingBlock, ToolCall, Usage } from '../../api/schemas.js';
import { upstreamProtocolError } from '../errors.js';
import { countUsage } from '../usage.js';

export interface AnthropicUsage {
  input_tokens?: number | null;
  output_tokens?: number | null;
  cache_read_input_tokens?: number | null;
  cache_creation_input_tokens?: number | null;
}

interface ResponseBlock {
  type?: string;
  text?: unknown;
  thinking?: unknown;
  signature?: unknown;
  data?: unknown;
  id?: unknown;
  name?: unknown;
  input?: unknown;
}

interface AnthropicMessageResponse {
  id?: unknown;
  model?: unknown;
  content?: unknown;
  stop_reason?: string | null;
  usage?: AnthropicUsage;
}

const FINISH_REASONS: ReadonlyMap<string, string> = new Map([
  ['end_turn', 'stop'],
  ['stop_sequence', 'stop'],
  ['pause_turn', 'stop'],
  ['max_tokens', 'length'],
  ['model_context_window_exceeded', 'length'],
  ['tool_use', 'tool_calls'],
  ['refusal', 'content_filter'],
]);

/** OpenAI's finish_reason for an Anthropic stop_reason; new reasons read as "stop". */
export function finishReason(stopReason: string | null | undefined): string {
  return (stopReason && FINISH_REASONS.get(stopReason)) || 'stop';
}

export function hasUsage(u: AnthropicUsage | null | undefined): u is AnthropicUsage {
  return !!u && typeof u.input_tokens === 'number' && typeof u.output_tokens === 'number';
}

export const USAGE_FIELDS = ['input_tokens', 'output_tokens', 'cache_read_input_tokens', 'cache_creation_input_tokens'] as const;

/** What is wrong with a reported usage (a count that is text, negative or 1e400), or undefined; absent fields are fine. */
export function anthropicUsageProblem(u: unknown): string | undefined {
  if (u === undefined || u === null) return undefined;
  if (typeof u !== 'object' || Array.isArray(u)) return 'a usage that is not an object';
  for (const field of USAGE_FIELDS) {
    const v = (u as Record<string, unknown>)[field];
    if (v !== undefined && v !== null && !(typeof v === 'number' && Number.isFinite(v) && v >= 0)) return `a usage whose ${field} is not a count`;
  }
  return undefined;
}

// Anthropic counts cached prompt tokens apart from input_tokens; OpenAI
// counts them inside prompt_tokens, which is what budgets and pricing expect.
export function translateUsage(u: AnthropicUsage): Usage {
  const cached = u.cache_read_input_tokens ?? 0;
  const written = u.cache_creation_input_tokens ?? 0;
  const prompt = (u.input_tokens ?? 0) + cached + written;
  const completion = u.output_tokens ?? 0;
  return {
    prompt_tokens: prompt,
    completion_tokens: completion,
    total_tokens: prompt + completion,
    // Writing the cache is priced apart (budget/pricing.ts), so it stays visible.
    prompt_tokens_details: written > 0 ? { cached_tokens: cached, cache_write_tokens: written } : { cached_tokens: cached },
  };
}

export async function readMessage(provider: string, data: unknown, request: ChatRequest): Promise<ChatCompletion> {
  const message = data as AnthropicMessageResponse | null;
  if (!message || typeof message !== 'object' || !Array.isArray(message.content)) {
    throw upstreamProtocolError(provider, 'a message without content');
  }
  const usageIssue = anthropicUsageProblem(message.usage);
  if (usageIssue) throw upstreamProtocolError(provider, usageIssue);
  const texts: string[] = [];
  const toolCalls: ToolCall[] = [];
  const thinking: ThinkingBlock[] = [];
  for (const block of message.content as Array<ResponseBlock | null>) {
    if (!block || typeof block !== 'object' || Array.isArray(block)) throw upstreamProtocolError(provider, 'a content block that is not an object');
    if (block.type === 'text' && typeof block.text === 'string') {
      texts.push(block.text);
    } else if (block.type === 'tool_use') {
      if (typeof block.id !== 'string' || typeof block.name !== 'string') throw upstreamProtocolError(provider, 'a tool_use block without id or name');
      const input = block.input ?? {};
      if (typeof input !== 'object' || Array.isArray(input)) throw upstreamProtocolError(provider, 'a tool_use block whose input is not an object');
      toolCalls.push({ id: block.id, type: 'function', function: { name: block.name, arguments: JSON.stringify(input) } });
    } else if (block.type === 'thinking' && typeof block.thinking === 'string') {
      thinking.push({ type: 'thinking', thinking: block.thinking, signature: typeof block.signature === 'string' ? block.signature : '' });
    } else if (block.type === 'redacted_thinking' && typeof block.data === 'string') {
      thinking.push({ type: 'redacted_thinking', data: block.data });
    }
    // Server-tool blocks have no OpenAI equivalent and are dropped.
  }
  const content = texts.length > 0 ? texts.join('') : null;
  const usage = hasUsage(message.usage)
    ? translateUsage(message.usage)
    : await countUsage(request, (content ?? '') + toolCalls.map((c) => c.function.name + c.function.arguments).join(''));
  return {
    id: `chatcmpl-${typeof message.id === 'string' ? message.id : 'anthropic'}`,
    object: 'chat.completion',
    created: Math.floor(Date.now() / 1000),
    model: typeof message.model === 'string' ? message.model : request.model,
    choices: [
      {
        index: 0,
        message: { role: 'assistant', content, ...(toolCalls.length > 0 ? { tool_calls: toolCalls } : {}), refusal: null, ...(thinking.length > 0 ? { thinking_blocks: thinking } : {}) },
        finish_reason: finishReason(message.stop_reason),
        logprobs: null,
      },
    ],
    usage,
  };
}
