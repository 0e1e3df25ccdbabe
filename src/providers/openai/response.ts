import type { ChatCompletion, ChatRequest, EmbeddingsResponse } from '../../api/schemas.js';
import { upstreamProtocolError } from '../errors.js';
import { countUsage, isUsage, normaliseUsage } from '../usage.js';

export async function readChatCompletion(provider: string, data: unknown, request: ChatRequest): Promise<ChatCompletion> {
  const completion = data as ChatCompletion;
  if (!completion || typeof completion !== 'object' || !Array.isArray(completion.choices)) {
    throw upstreamProtocolError(provider, 'a chat completion without choices');
  }
  if (isUsage(completion.usage)) {
    completion.usage = normaliseUsage(completion.usage);
  } else {
    let text = '';
    for (const choice of completion.choices) {
      text += choice.message?.content ?? '';
      for (const call of choice.message?.tool_calls ?? []) text += call.function.name + call.function.arguments;
    }
    completion.usage = await countUsage(request, text);
  }
  return completion;
}

export function readEmbeddings(provider: string, data: unknown): EmbeddingsResponse {
  const response = data as EmbeddingsResponse;
  if (!response || typeof response !== 'object' || !Array.isArray(response.data)) {
    throw upstreamProtocolError(provider, 'an embeddings response without data');
  }
  const u = response.usage as Partial<EmbeddingsResponse['usage']> | undefined;
  const prompt = typeof u?.prompt_tokens === 'number' ? u.prompt_tokens : 0;
  response.usage = { prompt_tokens: prompt, total_tokens: typeof u?.total_tokens === 'number' ? u.total_tokens : prompt };
  return response;
}
