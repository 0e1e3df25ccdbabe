// Any OpenAI-compatible upstream (OpenAI, Azure OpenAI, vLLM, Ollama, Groq,
// Together...) is this one adapter plus config.
import type { ChatChunk, ChatRequest, EmbeddingsRequest } from '../../api/schemas.js';
import type { ProviderConfig } from '../../config/schema.js';
import { upstreamStreamError } from '../errors.js';
import type { HttpClients } from '../http.js';
import type { Cancel } from '../cancel.js';
import { createUpstreamCaller } from '../upstream.js';
import type { Deployment, NativeResponsesRequest, ProviderAdapter } from '../types.js';
import { buildChatRequest, buildEmbeddingsRequest, buildResponsesRequest } from './request.js';
import { readResponseAsChat, readResponsesStreamAsChat } from './responses.js';
import { readChatCompletion, readEmbeddings } from './response.js';
import { readChatStream } from './stream.js';

type OpenAIProvider = Extract<ProviderConfig, { type: 'openai' }>;

export function createOpenAIAdapter(name: string, provider: OpenAIProvider, clients: HttpClients): ProviderAdapter {
  const pool = clients.pool(new URL(provider.base_url).origin, {
    connections: provider.connections,
    connectTimeoutMs: provider.timeouts.connect_ms,
  });
  const upstream = createUpstreamCaller(name, pool);

  return {
    async chat(request: ChatRequest, deployment: Deployment, cancel: Cancel) {
      return readChatCompletion(name, await upstream.json(buildChatRequest(request, deployment, false), cancel, deployment), request);
    },

    async *chatStream(request: ChatRequest, deployment: Deployment, cancel: Cancel): AsyncGenerator<ChatChunk> {
      const res = await upstream.send(buildChatRequest(request, deployment, true), cancel, deployment);
      try {
        yield* readChatStream(name, res.body, request, deployment.responseLimits);
      } catch (err) {
        throw upstreamStreamError(name, err, cancel);
      } finally {
        if (!res.body.destroyed) res.body.destroy();
      }
    },

    async responses(request: NativeResponsesRequest, deployment: Deployment, cancel: Cancel) {
      return readResponseAsChat(name, (await upstream.json(buildResponsesRequest(request.body, deployment, false), cancel, deployment)).value, request.chat);
    },

    async *responsesStream(request: NativeResponsesRequest, deployment: Deployment, cancel: Cancel): AsyncGenerator<ChatChunk> {
      const res = await upstream.send(buildResponsesRequest(request.body, deployment, true), cancel, deployment);
      try {
        yield* readResponsesStreamAsChat(name, res.body, request.chat, deployment.responseLimits);
      } catch (err) {
        throw upstreamStreamError(name, err, cancel);
      } finally {
        if (!res.body.destroyed) res.body.destroy();
      }
    },

    async embed(request: EmbeddingsRequest, deployment: Deployment, cancel: Cancel) {
      return readEmbeddings(name, (await upstream.json(buildEmbeddingsRequest(request, deployment), cancel, deployment)).value, request);
    },
  };
}
