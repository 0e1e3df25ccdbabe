// Token counting with tiktoken, loaded only the first time something needs a
// count (an upstream that reports no usage, a budget or a routing rule).
import type { ChatMessage, ChatRequest } from '../api/schemas.js';

// encode_ordinary: text is counted as text. `encode` throws on special-token
// text such as "<|endoftext|>", which any prompt may contain.
type Encoder = { encode_ordinary(text: string): Uint32Array };
let encoder: Encoder | undefined;
let loading: Promise<Encoder> | undefined;

async function loadEncoder(): Promise<Encoder> {
  if (encoder) return encoder;
  loading ??= import('tiktoken').then((m) => {
    encoder = m.get_encoding('o200k_base');
    return encoder;
  });
  return loading;
}

export async function countTextTokens(text: string): Promise<number> {
  if (text.length === 0) return 0;
  return (await loadEncoder()).encode_ordinary(text).length;
}

/** Prompt tokens of a chat request, with OpenAI's per-message overhead. */
export async function countMessageTokens(messages: readonly ChatMessage[]): Promise<number> {
  const enc = await loadEncoder();
  let total = 3; // every reply is primed with <|start|>assistant<|message|>
  for (const m of messages) {
    total += 3 + enc.encode_ordinary(m.role).length;
    if (typeof m.content === 'string') total += enc.encode_ordinary(m.content).length;
    else if (Array.isArray(m.content)) {
      for (const part of m.content) if (part.type === 'text' && typeof part.text === 'string') total += enc.encode_ordinary(part.text).length;
    }
    if (m.name) total += 1 + enc.encode_ordinary(m.name).length;
    for (const call of m.tool_calls ?? []) total += enc.encode_ordinary(call.function.name).length + enc.encode_ordinary(call.function.arguments).length + 3;
  }
  return total;
}

/**
 * An upper bound on countMessageTokens, without tokenizing: a token is at
 * least one UTF-8 byte, so a text has no more tokens than bytes. Tools, which
 * the count leaves out, are included, and an image part counts 1,024. Budgets
 * reserve with it; a routing rule is decided by it alone when it settles the
 * rule either way.
 */
export function promptTokenBound(chat: ChatRequest): number {
  let n = 3;
  for (const m of chat.messages) {
    n += 3 + Buffer.byteLength(m.role);
    if (typeof m.content === 'string') n += Buffer.byteLength(m.content);
    else if (Array.isArray(m.content)) for (const p of m.content) n += p.type === 'text' && typeof p.text === 'string' ? Buffer.byteLength(p.text) : 1024;
    for (const c of m.tool_calls ?? []) n += Buffer.byteLength(c.function.arguments) + Buffer.byteLength(c.function.name) + 3;
    if (m.name) n += Buffer.byteLength(m.name) + 1;
  }
  for (const t of chat.tools ?? []) n += Buffer.byteLength(JSON.stringify(t.function));
  return n;
}
