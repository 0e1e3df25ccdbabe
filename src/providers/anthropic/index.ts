// Anthropic's Messages API behind the OpenAI-shaped ProviderAdapter.
import type { ChatChunk, ChatRequest } from '../../api/schemas.js';
import { GatewayError } from '../../errors.js';
import { upstreamProtocolError, upstreamStreamError } from '../errors.js';
import type { HttpClients } from '../http.js';
import type { Cancel } from '../cancel.js';
import { createUpstreamCaller } from '../upstream.js';
import type { Deployment, NativeRequest, ProviderAdapter } from '../types.js';
import { buildMessagesRequest, type AnthropicProvider } from './request.js';
import { readMessage } from './response.js';
import { readMessageStream } from './stream.js';

export type { AnthropicProvider as AnthropicProviderConfig } from './request.js';

export function createAnthropicAdapter(name: string, provider: AnthropicProvider, clients: HttpClients): ProviderAdapter {
  const pool = clients.pool(new URL(provider.base_url).origin, {
    connections: provider.connections,
    connectTimeoutMs: provider.timeouts.connect_ms,
  });
  const upstream = createUpstreamCaller(name, pool);

  return {
    async chat(request: ChatRequest, deployment: Deployment, cancel: Cancel, native?: NativeRequest) {
      // Translated from Anthropic's shape: the answer's text is the gateway's own serialisation.
      return { completion: await readMessage(name, (await upstream.json(buildMessagesRequest(provider, request, deployment, false, native), cancel, deployment)).value, request) };
    },

    async *chatStream(request: ChatRequest, deployment: Deployment, cancel: Cancel, native?: NativeRequest): AsyncGenerator<ChatChunk> {
      const res = await upstream.send(buildMessagesRequest(provider, request, deployment, true, native), cancel, deployment);
      try {
        yield* readMessageStream(name, res.body, request, deployment.responseLimits);
      } catch (err) {
        throw upstreamStreamError(name, err, cancel);
      } finally {
        if (!res.body.destroyed) res.body.destroy();
      }
    },

    async countTokens(native: NativeRequest, deployment: Deployment, cancel: Cancel) {
      const answer = (await upstream.json(buildMessagesRequest(provider, { model: deployment.model, messages: [] }, deployment, 'count', native), cancel, deployment)).value as { input_tokens?: unknown } | null;
      const n = answer?.input_tokens;
      if (typeof n !== 'number' || !Number.isInteger(n) || n < 0) throw upstreamProtocolError(name, 'a token count that is not a count');
      return n;
    },

    async embed() {
      throw new GatewayError('invalid_request', 'Anthropic has no embeddings API; route this model to an openai or mock provider.', { param: 'model' });
    },
  };
}
