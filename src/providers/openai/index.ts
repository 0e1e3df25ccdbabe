// Any OpenAI-compatible upstream (OpenAI, Azure OpenAI, vLLM, Ollama, Groq,
// Together...) is this one adapter plus config.
import type { Dispatcher } from 'undici';
import type { ChatChunk, ChatRequest, EmbeddingsRequest } from '../../api/schemas.js';
import type { ProviderConfig } from '../../config/schema.js';
import { upstreamProtocolError, upstreamStatusError, upstreamTransportError } from '../errors.js';
import type { HttpClients } from '../http.js';
import type { Deployment, ProviderAdapter } from '../types.js';
import { buildChatRequest, buildEmbeddingsRequest, type UpstreamRequest } from './request.js';
import { readChatCompletion, readEmbeddings } from './response.js';
import { readChatStream } from './stream.js';

type OpenAIProvider = Extract<ProviderConfig, { type: 'openai' }>;

export function createOpenAIAdapter(name: string, provider: OpenAIProvider, clients: HttpClients): ProviderAdapter {
  const pool = clients.pool(new URL(provider.base_url).origin, {
    connections: provider.connections,
    connectTimeoutMs: provider.timeouts.connect_ms,
  });
  const { first_byte_ms: firstByteMs, total_ms: totalMs } = provider.timeouts;

  async function send(up: UpstreamRequest, signal: AbortSignal, stream: boolean): Promise<Dispatcher.ResponseData> {
    let res: Dispatcher.ResponseData;
    try {
      res = await pool.request({
        path: up.path,
        method: 'POST',
        headers: up.headers,
        body: up.body,
        signal,
        // A non-streamed answer's headers come only once it is generated.
        headersTimeout: stream ? firstByteMs : totalMs,
        bodyTimeout: firstByteMs,
      });
    } catch (err) {
      throw upstreamTransportError(name, err, signal);
    }
    if (res.statusCode >= 400) {
      res.body.dump().catch(() => {});
      throw upstreamStatusError(name, res.statusCode, res.headers);
    }
    return res;
  }

  async function readJson(res: Dispatcher.ResponseData, signal: AbortSignal): Promise<unknown> {
    try {
      return await res.body.json();
    } catch (err) {
      if (err instanceof SyntaxError) throw upstreamProtocolError(name, 'a body that is not JSON');
      throw upstreamTransportError(name, err, signal);
    }
  }

  return {
    async chat(request: ChatRequest, deployment: Deployment, signal: AbortSignal) {
      const res = await send(buildChatRequest(request, deployment, false), signal, false);
      return readChatCompletion(name, await readJson(res, signal), request);
    },

    async *chatStream(request: ChatRequest, deployment: Deployment, signal: AbortSignal): AsyncGenerator<ChatChunk> {
      const res = await send(buildChatRequest(request, deployment, true), signal, true);
      try {
        yield* readChatStream(name, res.body, request);
      } catch (err) {
        throw upstreamTransportError(name, err, signal);
      } finally {
        if (!res.body.destroyed) res.body.destroy();
      }
    },

    async embed(request: EmbeddingsRequest, deployment: Deployment, signal: AbortSignal) {
      const res = await send(buildEmbeddingsRequest(request, deployment), signal, false);
      return readEmbeddings(name, await readJson(res, signal));
    },
  };
}
