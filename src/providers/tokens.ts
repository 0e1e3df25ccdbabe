// Token counting with tiktoken, loaded only the first time something needs a
// count (an upstream that reports no usage, a budget or a routing rule).
import type { ChatMessage } from '../api/schemas.js';

type Encoder = { encode(text: string): Uint32Array };
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
  return (await loadEncoder()).encode(text).length;
}

/** Prompt tokens of a chat request, with OpenAI's per-message overhead. */
export async function countMessageTokens(messages: readonly ChatMessage[]): Promise<number> {
  const enc = await loadEncoder();
  let total = 3; // every reply is primed with <|start|>assistant<|message|>
  for (const m of messages) {
    total += 3 + enc.encode(m.role).length;
    if (typeof m.content === 'string') total += enc.encode(m.content).length;
    else if (Array.isArray(m.content)) {
      for (const part of m.content) if (part.type === 'text' && typeof part.text === 'string') total += enc.encode(part.text).length;
    }
    if (m.name) total += 1 + enc.encode(m.name).length;
    for (const call of m.tool_calls ?? []) total += enc.encode(call.function.name).length + enc.encode(call.function.arguments).length + 3;
  }
  return total;
}
