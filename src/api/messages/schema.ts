// The Anthropic Messages API request (POST /v1/messages) as the gateway
// checks it, with Anthropic's documented ranges. Objects stay loose so fields
// Anthropic adds later reach an Anthropic upstream, which gets the request
// natively; the translation to chat (to-chat.ts) decides what other upstreams
// can serve.
import { z } from 'zod';
import { stringOr, tagged } from '../tagged.js';

const MAX_OUTPUT_TOKENS = 1_000_000;

const cacheControl = z.looseObject({ type: z.literal('ephemeral'), ttl: z.enum(['5m', '1h']).optional() }).nullable().optional();

const textBlock = z.looseObject({ type: z.literal('text'), text: z.string(), cache_control: cacheControl });
const imageBlock = z.looseObject({
  type: z.literal('image'),
  source: tagged(
    {
      base64: z.looseObject({
        type: z.literal('base64'),
        media_type: z.enum(['image/jpeg', 'image/png', 'image/gif', 'image/webp']),
        data: z.string().min(1),
      }),
      url: z.looseObject({ type: z.literal('url'), url: z.string().regex(/^https?:\/\//i, 'image urls are http(s) URLs') }),
    },
    z.looseObject({ type: z.string().min(1) }),
  ),
  cache_control: cacheControl,
});
const toolUseBlock = z.looseObject({
  type: z.literal('tool_use'),
  id: z.string().min(1),
  name: z.string().min(1),
  input: z.record(z.string(), z.unknown()),
  cache_control: cacheControl,
});
const toolResultBlock = z.looseObject({
  type: z.literal('tool_result'),
  tool_use_id: z.string().min(1),
  content: stringOr(z.array(tagged({ text: textBlock, image: imageBlock }, z.looseObject({ type: z.string().min(1) }))), 'content is a string or an array of blocks').optional(),
  is_error: z.boolean().optional(),
  cache_control: cacheControl,
});
const thinkingBlock = z.looseObject({ type: z.literal('thinking'), thinking: z.string(), signature: z.string() });
// document, search_result, redacted_thinking, server tool results...
const otherBlock = z.looseObject({ type: z.string().min(1) });
const block = tagged({ text: textBlock, image: imageBlock, tool_use: toolUseBlock, tool_result: toolResultBlock, thinking: thinkingBlock }, otherBlock);

const message = z.looseObject({
  role: z.enum(['user', 'assistant']),
  content: stringOr(z.array(block), 'content is a string or an array of content blocks'),
});

const customTool = z.looseObject({
  type: z.literal('custom').optional(),
  name: z.string().regex(/^[a-zA-Z0-9_-]{1,128}$/, 'tool names are 1-128 letters, digits, "_" or "-"'),
  description: z.string().optional(),
  input_schema: z.looseObject({ type: z.literal('object') }),
  cache_control: cacheControl,
});
// Server and Anthropic-defined tools (web_search_20250305, bash_20250124, ...).
const serverTool = z.looseObject({ type: z.string().min(1), name: z.string().min(1) });
const tool = tagged({ custom: customTool }, serverTool, { untagged: 'custom' });

const toolChoice = tagged(
  {
    auto: z.looseObject({ type: z.literal('auto'), disable_parallel_tool_use: z.boolean().optional() }),
    any: z.looseObject({ type: z.literal('any'), disable_parallel_tool_use: z.boolean().optional() }),
    tool: z.looseObject({ type: z.literal('tool'), name: z.string().min(1), disable_parallel_tool_use: z.boolean().optional() }),
    none: z.looseObject({ type: z.literal('none') }),
  },
  z.looseObject({ type: z.enum(['auto', 'any', 'tool', 'none'], 'tool_choice.type is "auto", "any", "tool" or "none"') }),
);

const thinking = tagged(
  {
    enabled: z.looseObject({ type: z.literal('enabled'), budget_tokens: z.number().int().min(1024, 'thinking.budget_tokens must be at least 1024') }),
    disabled: z.looseObject({ type: z.literal('disabled') }),
    adaptive: z.looseObject({ type: z.literal('adaptive') }),
  },
  z.looseObject({ type: z.enum(['enabled', 'disabled', 'adaptive'], 'thinking.type is "enabled", "disabled" or "adaptive"') }),
);

export const messagesRequestSchema = z.looseObject({
  model: z.string().min(1, 'model must not be empty').max(256),
  max_tokens: z.number({ error: 'max_tokens is required: the most tokens the answer may take' }).int().min(1).max(MAX_OUTPUT_TOKENS),
  messages: z.array(message).min(1, 'messages must hold at least one message'),
  system: stringOr(z.array(textBlock), 'system is a string or an array of text blocks').optional(),
  tools: z.array(tool).optional(),
  tool_choice: toolChoice.optional(),
  stop_sequences: z.array(z.string()).optional(),
  metadata: z.looseObject({ user_id: z.string().max(256).nullable().optional() }).optional(),
  thinking: thinking.optional(),
  temperature: z.number().min(0).max(1).optional(),
  top_p: z.number().min(0).max(1).optional(),
  top_k: z.number().int().min(0).optional(),
  stream: z.boolean().optional(),
});

export const countTokensRequestSchema = messagesRequestSchema.omit({ max_tokens: true, stream: true, stop_sequences: true, temperature: true, top_p: true, top_k: true, metadata: true });

export type MessagesRequest = z.infer<typeof messagesRequestSchema>;
export type CountTokensRequest = z.infer<typeof countTokensRequestSchema>;
export type MessagesBlock = z.infer<typeof block>;
export type MessagesMessage = z.infer<typeof message>;
