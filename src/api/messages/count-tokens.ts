// POST /v1/messages/count_tokens. An Anthropic upstream counts natively (its
// own tokenizer, tools and images included): the integration passes that call
// as `native`. Any other upstream gets an estimate with the gateway's
// tiktoken count of the same request translated to chat, tools included, the
// way budgets count prompts; an image counts as budgets bound it (1,024).
import { GatewayError } from '../../errors.js';
import { countMessageTokens, countTextTokens } from '../../providers/tokens.js';
import type { CountTokensRequest } from './schema.js';
import { messagesToChat, unsupportedError } from './to-chat.js';

export interface CountTokensResult {
  input_tokens: number;
}

export type NativeTokenCounter = (request: CountTokensRequest, signal: AbortSignal) => Promise<number>;

const IMAGE_TOKENS = 1024;

export async function countMessagesTokens(request: CountTokensRequest, options: { native?: NativeTokenCounter; signal: AbortSignal }): Promise<CountTokensResult> {
  if (options.native) return { input_tokens: await options.native(request, options.signal) };
  const t = messagesToChat({ ...request, max_tokens: 1 });
  if (!t.ok) throw unsupportedError(t.unsupported);
  let n = await countMessageTokens(t.chat.messages);
  for (const m of t.chat.messages) if (Array.isArray(m.content)) n += m.content.filter((p) => p.type === 'image_url').length * IMAGE_TOKENS;
  for (const tool of t.chat.tools ?? []) n += await countTextTokens(JSON.stringify(tool.function));
  if (!Number.isFinite(n)) throw new GatewayError('internal_error', 'The token count failed.');
  return { input_tokens: n };
}
