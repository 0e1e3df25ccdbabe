// Calls the candidates in order: one fallback loop that records every attempt
// and, when all fail, throws one error that sums them up.
import type { ChatChunk, ChatCompletion, EmbeddingsResponse } from '../api/schemas.js';
import { GatewayError, toGatewayError } from '../errors.js';
import type { Reply, RequestContext } from '../pipeline/context.js';
import type { Deployment, ProviderAdapter } from '../providers/types.js';
import { createDeadline, type Deadline } from './deadline.js';

export async function dispatchChat(ctx: RequestContext): Promise<Reply> {
  if (ctx.stream) {
    const includeUsage = ctx.chat!.stream_options?.include_usage === true;
    return { kind: 'stream', chunks: await openStream(ctx), includeUsage };
  }
  const completion = await withFallback<ChatCompletion>(ctx, (adapter, d, signal) => adapter.chat(ctx.chat!, d, signal));
  ctx.usage = completion.usage;
  return { kind: 'json', status: 200, body: completion };
}

export async function dispatchEmbeddings(ctx: RequestContext): Promise<Reply> {
  const response = await withFallback<EmbeddingsResponse>(ctx, (adapter, d, signal) => adapter.embed(ctx.embeddings!, d, signal));
  ctx.usage = { prompt_tokens: response.usage.prompt_tokens, completion_tokens: 0, total_tokens: response.usage.total_tokens };
  return { kind: 'json', status: 200, body: response };
}

type Call<T> = (adapter: ProviderAdapter, deployment: Deployment, signal: AbortSignal) => Promise<T>;

async function withFallback<T>(ctx: RequestContext, call: Call<T>): Promise<T> {
  const errors: GatewayError[] = [];
  for (const deployment of ctx.candidates) {
    const adapter = ctx.config.adapters.get(deployment.providerName)!;
    const deadline = createDeadline(ctx.signal, deployment.provider.timeouts.total_ms);
    const started = performance.now();
    try {
      const result = await call(adapter, deployment, deadline.signal);
      recordAttempt(ctx, deployment, started);
      commit(ctx, deployment);
      return result;
    } catch (err) {
      const error = toGatewayError(err);
      recordAttempt(ctx, deployment, started, error);
      if (!error.upstream?.fallbackable || ctx.signal.aborted) throw error;
      errors.push(error);
    } finally {
      deadline.clear();
    }
  }
  throw aggregate(ctx, errors);
}

/**
 * Streams commit to a deployment when its first content chunk arrives, not
 * when its headers do, so a provider that answers 200 and then stalls is still
 * replaced within the first-byte timeout. After that there is no switching.
 */
async function openStream(ctx: RequestContext): Promise<AsyncIterable<ChatChunk>> {
  const errors: GatewayError[] = [];
  for (const deployment of ctx.candidates) {
    const adapter = ctx.config.adapters.get(deployment.providerName)!;
    const { total_ms, first_byte_ms } = deployment.provider.timeouts;
    const deadline = createDeadline(ctx.signal, total_ms);
    const started = performance.now();
    const iterator = adapter.chatStream(ctx.chat!, deployment, deadline.signal)[Symbol.asyncIterator]();
    const head: ChatChunk[] = [];
    try {
      deadline.armFirstByte(first_byte_ms);
      for (;;) {
        const next = await iterator.next();
        if (next.done) break;
        head.push(next.value);
        if (hasContent(next.value)) break;
      }
      deadline.clearFirstByte();
      recordAttempt(ctx, deployment, started);
      commit(ctx, deployment);
      return streamFrom(head, iterator, deadline);
    } catch (err) {
      deadline.clear();
      void iterator.return?.(undefined)?.catch(() => {});
      const error = toGatewayError(err);
      recordAttempt(ctx, deployment, started, error);
      if (!error.upstream?.fallbackable || ctx.signal.aborted) throw error;
      errors.push(error);
    }
  }
  throw aggregate(ctx, errors);
}

async function* streamFrom(head: ChatChunk[], iterator: AsyncIterator<ChatChunk>, deadline: Deadline): AsyncGenerator<ChatChunk> {
  try {
    yield* head;
    for (;;) {
      const next = await iterator.next();
      if (next.done) return;
      yield next.value;
    }
  } finally {
    deadline.clear();
    await iterator.return?.(undefined);
  }
}

function hasContent(chunk: ChatChunk): boolean {
  if (chunk.usage) return true;
  for (const choice of chunk.choices) {
    if (choice.finish_reason || choice.delta?.content || choice.delta?.tool_calls || choice.delta?.refusal) return true;
  }
  return false;
}

function commit(ctx: RequestContext, deployment: Deployment): void {
  ctx.deployment = deployment;
  ctx.responseHeaders['x-gateway-provider'] = deployment.providerName;
  ctx.responseHeaders['x-gateway-deployment'] = deployment.id;
}

function recordAttempt(ctx: RequestContext, deployment: Deployment, started: number, error?: GatewayError): void {
  ctx.attempts.push({
    deployment: deployment.id,
    provider: deployment.providerName,
    latencyMs: Math.round((performance.now() - started) * 1000) / 1000,
    ...(error ? { code: error.code, errorClass: error.upstream?.errorClass, status: error.upstream?.status } : { status: 200 }),
  });
}

function aggregate(ctx: RequestContext, errors: GatewayError[]): GatewayError {
  const last = errors.at(-1);
  if (!last) {
    return new GatewayError('upstream_unavailable', `No deployment of model "${ctx.requestedModel}" is available right now. Retry later.`, { retryAfter: 1 });
  }
  if (errors.length === 1) return last;
  const summary = ctx.attempts.map((a) => `${a.deployment}: ${a.code ?? 'ok'}`).join('; ');
  return new GatewayError(last.code, `All ${errors.length} deployments of model "${ctx.requestedModel}" failed (${summary}). ${last.message}`, {
    retryAfter: last.retryAfter,
    status: last.status,
    upstream: last.upstream,
  });
}
