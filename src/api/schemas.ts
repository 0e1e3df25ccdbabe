// The gateway's public API is OpenAI's. These schemas check what the gateway
// itself relies on and let every other field through untouched, so new
// OpenAI parameters keep working without a release.
import { z } from 'zod';

// OpenAI's documented ranges (Chat Completions and Embeddings API reference)
// are checked here, so a request the provider would refuse costs no upstream
// call, no reservation and no fallback attempt: temperature [0, 2], top_p
// [0, 1], n [1, 128], presence/frequency_penalty [-2, 2], top_logprobs
// [0, 20] with logprobs, logit_bias token ids to [-100, 100] (at most 300),
// max_tokens and max_completion_tokens >= 1, seed an integer, dimensions >= 1.
const MAX_OUTPUT_TOKENS = 1_000_000;
const MAX_LOGIT_BIAS = 300;

const textPart = z.looseObject({ type: z.literal('text'), text: z.string() });
const imagePart = z.looseObject({
  type: z.literal('image_url'),
  image_url: z.looseObject({ url: z.string().min(1), detail: z.string().optional() }),
});
const otherPart = z.looseObject({ type: z.string().min(1) });
const contentPart = z.union([textPart, imagePart, otherPart]);

const toolCall = z.looseObject({
  id: z.string().min(1),
  type: z.literal('function'),
  function: z.looseObject({ name: z.string().min(1), arguments: z.string() }),
});

const message = z.looseObject({
  role: z.enum(['system', 'developer', 'user', 'assistant', 'tool', 'function']),
  content: z.union([z.string(), z.array(contentPart), z.null()]).optional(),
  name: z.string().optional(),
  tool_calls: z.array(toolCall).optional(),
  tool_call_id: z.string().optional(),
});

const tool = z.looseObject({
  type: z.literal('function'),
  function: z.looseObject({
    name: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'tool names are 1-64 letters, digits, "_" or "-"'),
    description: z.string().optional(),
    parameters: z.record(z.string(), z.unknown()).optional(),
  }),
});

const responseFormat = z.union([
  z.looseObject({ type: z.literal('text') }),
  z.looseObject({ type: z.literal('json_object') }),
  z.looseObject({
    type: z.literal('json_schema'),
    json_schema: z.looseObject({ name: z.string().min(1), schema: z.record(z.string(), z.unknown()).optional() }),
  }),
]);

const modelName = z.string().min(1, 'model must not be empty').max(256);

export const chatRequestSchema = z.looseObject({
  model: modelName,
  messages: z.array(message).default([]),
  stream: z.boolean().optional(),
  stream_options: z.looseObject({ include_usage: z.boolean().optional() }).nullable().optional(),
  max_tokens: z.number().int().min(1).max(MAX_OUTPUT_TOKENS).nullable().optional(),
  max_completion_tokens: z.number().int().min(1).max(MAX_OUTPUT_TOKENS).nullable().optional(),
  temperature: z.number().min(0).max(2).nullable().optional(),
  top_p: z.number().min(0).max(1).nullable().optional(),
  n: z.number().int().min(1).max(128).nullable().optional(),
  seed: z.number().int().nullable().optional(),
  presence_penalty: z.number().min(-2).max(2).nullable().optional(),
  frequency_penalty: z.number().min(-2).max(2).nullable().optional(),
  logprobs: z.boolean().nullable().optional(),
  top_logprobs: z.number().int().min(0).max(20).nullable().optional(),
  logit_bias: z
    .record(z.string().regex(/^(0|[1-9]\d{0,9})$/, 'logit_bias keys are token ids'), z.number().min(-100).max(100))
    .refine((bias) => Object.keys(bias).length <= MAX_LOGIT_BIAS, `logit_bias may hold at most ${MAX_LOGIT_BIAS} tokens`)
    .nullable()
    .optional(),
  stop: z.union([z.string(), z.array(z.string()).max(4)]).nullable().optional(),
  user: z.string().max(256).optional(),
  tools: z.array(tool).max(128).optional(),
  tool_choice: z
    .union([
      z.enum(['none', 'auto', 'required']),
      z.looseObject({ type: z.literal('function'), function: z.looseObject({ name: z.string() }) }),
    ])
    .optional(),
  response_format: responseFormat.optional(),
  metadata: z.record(z.string(), z.string()).optional(),
}).superRefine((body, ctx) => {
  if (body.top_logprobs != null && body.logprobs !== true) {
    ctx.addIssue({ code: 'custom', path: ['top_logprobs'], message: 'top_logprobs needs "logprobs": true' });
  }
  // A prompt-template request (src/prompts/) sends variables instead: the
  // gateway renders the messages. Every other request needs at least one.
  if (body.messages.length > 0 || namesPromptTemplate(body)) return;
  ctx.addIssue({ code: 'custom', path: ['messages'], message: 'messages must hold at least one message' });
});

function namesPromptTemplate(body: { model: string; [k: string]: unknown }): boolean {
  return body.model.startsWith('prompt:') || body.prompt !== undefined || body.variables !== undefined;
}

export const embeddingsRequestSchema = z.looseObject({
  model: modelName,
  input: z.union([
    z.string(),
    z.array(z.string()).min(1, 'input must not be an empty array').max(2048),
    z.array(z.number().int()).min(1),
    z.array(z.array(z.number().int()).min(1)).min(1).max(2048),
  ]),
  encoding_format: z.enum(['float', 'base64']).optional(),
  dimensions: z.number().int().min(1).max(65_536).optional(),
  user: z.string().max(256).optional(),
});

export type ChatRequest = z.infer<typeof chatRequestSchema>;
export type ChatMessage = z.infer<typeof message>;
export type ContentPart = z.infer<typeof contentPart>;
export type ToolDefinition = z.infer<typeof tool>;
export type EmbeddingsRequest = z.infer<typeof embeddingsRequestSchema>;

// ---- responses (what adapters produce) ----

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  prompt_tokens_details?: { cached_tokens?: number; [k: string]: unknown };
  completion_tokens_details?: Record<string, unknown>;
}

/**
 * Anthropic's extended thinking, kept in the chat form as `thinking_blocks`
 * on the message (as LiteLLM names it) so the Messages ingress can give it
 * back as it came, signature included: a later turn must send it unchanged.
 */
export type ThinkingBlock = { type: 'thinking'; thinking: string; signature: string } | { type: 'redacted_thinking'; data: string };

/**
 * A piece of a thinking block in a stream chunk (`delta.thinking_block`):
 * `block` is the upstream's block index, a new one opens a new block; a piece
 * carries thinking text, the signature, or (redacted) the whole data.
 */
export interface ThinkingDelta {
  block: number;
  type: 'thinking' | 'redacted_thinking';
  thinking?: string;
  signature?: string;
  data?: string;
}

export interface ToolCall {
  id: string;
  type: 'function';
  function: { name: string; arguments: string };
}

export interface ChatChoice {
  index: number;
  message: { role: 'assistant'; content: string | null; tool_calls?: ToolCall[]; refusal?: string | null; [k: string]: unknown };
  finish_reason: string | null;
  logprobs?: unknown;
  [k: string]: unknown;
}

export interface ChatCompletion {
  id: string;
  object: 'chat.completion';
  created: number;
  model: string;
  choices: ChatChoice[];
  usage?: Usage;
  system_fingerprint?: string | null;
  [k: string]: unknown;
}

export interface ToolCallDelta {
  index: number;
  id?: string;
  type?: 'function';
  function?: { name?: string; arguments?: string };
}

export interface ChatChunkChoice {
  index: number;
  delta: { role?: 'assistant'; content?: string | null; tool_calls?: ToolCallDelta[]; refusal?: string | null; [k: string]: unknown };
  finish_reason: string | null;
  logprobs?: unknown;
  [k: string]: unknown;
}

export interface ChatChunk {
  id: string;
  object: 'chat.completion.chunk';
  created: number;
  model: string;
  choices: ChatChunkChoice[];
  usage?: Usage | null;
  [k: string]: unknown;
}

export interface Embedding {
  object: 'embedding';
  index: number;
  embedding: number[] | string;
}

export interface EmbeddingsResponse {
  object: 'list';
  data: Embedding[];
  model: string;
  usage: { prompt_tokens: number; total_tokens: number };
}
