// Builds the upstream request for any OpenAI-compatible API, in OpenAI's own
// URL style or Azure's deployment style. Paths come from config only; the one
// request-derived part (the deployment's model) was validated at config load
// and is encoded again here.
import type { ChatRequest, EmbeddingsRequest } from '../../api/schemas.js';
import type { ProviderConfig } from '../../config/schema.js';
import { applyDeployment, type Deployment } from '../types.js';
import type { UpstreamRequest } from '../upstream.js';
import { addTraceHeaders } from '../../telemetry/propagation.js';

type OpenAIProvider = Extract<ProviderConfig, { type: 'openai' }>;


export function upstreamPath(provider: OpenAIProvider, model: string, endpoint: 'chat/completions' | 'embeddings' | 'responses'): { origin: string; path: string } {
  const url = new URL(provider.base_url);
  const base = url.pathname.replace(/\/+$/, '');
  if (provider.api_style === 'azure') {
    const version = encodeURIComponent(provider.api_version ?? '');
    return { origin: url.origin, path: `${base}/openai/deployments/${encodeURIComponent(model)}/${endpoint}?api-version=${version}` };
  }
  return { origin: url.origin, path: `${base}/${endpoint}` };
}

export function upstreamHeaders(provider: OpenAIProvider, extra: Record<string, string> = {}): Record<string, string> {
  const headers: Record<string, string> = { ...provider.headers, 'content-type': 'application/json', ...extra };
  if (provider.api_key) {
    if (provider.api_style === 'azure') headers['api-key'] = provider.api_key;
    else headers.authorization = `Bearer ${provider.api_key}`;
  }
  addTraceHeaders(headers);
  return headers;
}

export function buildChatRequest(request: ChatRequest, deployment: Deployment, stream: boolean): UpstreamRequest {
  const provider = deployment.provider as OpenAIProvider;
  const body = applyDeployment(request, deployment);
  if (stream) {
    body.stream = true;
    // The gateway always needs the final usage, whatever the client asked for.
    body.stream_options = { ...(body.stream_options ?? {}), include_usage: true };
  } else {
    delete body.stream;
    delete body.stream_options;
  }
  const { origin, path } = upstreamPath(provider, deployment.model, 'chat/completions');
  return { origin, path, headers: upstreamHeaders(provider, stream ? { accept: 'text/event-stream' } : {}), body: JSON.stringify(body) };
}

export function buildEmbeddingsRequest(request: EmbeddingsRequest, deployment: Deployment): UpstreamRequest {
  const provider = deployment.provider as OpenAIProvider;
  const body = applyDeployment(request, deployment);
  const { origin, path } = upstreamPath(provider, deployment.model, 'embeddings');
  return { origin, path, headers: upstreamHeaders(provider), body: JSON.stringify(body) };
}

/**
 * A Responses request for an upstream that speaks the API: the validated
 * body re-serialised with the deployment's model. Deployment params are
 * chat-shaped and stay out of it.
 */
export function buildResponsesRequest(request: Record<string, unknown>, deployment: Deployment, stream: boolean): UpstreamRequest {
  const provider = deployment.provider as OpenAIProvider;
  const body: Record<string, unknown> = { ...request, model: deployment.model };
  if (stream) body.stream = true;
  else delete body.stream;
  const { origin, path } = upstreamPath(provider, deployment.model, 'responses');
  return { origin, path, headers: upstreamHeaders(provider, stream ? { accept: 'text/event-stream' } : {}), body: JSON.stringify(body) };
}
