// Calls the candidates: one fallback loop with per-deployment retries (backoff
// with full jitter, a retry budget), circuit breakers, 429 cool-downs and
// timeouts. Every try is recorded; when all fail, a configured safe mode may
// answer, and otherwise one error sums them up.
import { setTimeout as sleep } from 'node:timers/promises';
import { admitAttempt } from '../admission/stage.js';
import type { ChatChunk, ChatRequest, EmbeddingsResponse } from '../api/schemas.js';
import { nativeResponsesRequest } from '../api/responses/native.js';
import type { DegradeConfig } from '../config/schema.js';
import { GatewayError, toGatewayError } from '../errors.js';
import type { Attempt, AttemptSpan, RequestContext } from '../pipeline/context.js';
import type { ChatAnswer, Deployment, ProviderAdapter } from '../providers/types.js';
import { countsAgainstBreaker } from './breaker.js';
import { candidatesFor } from './candidates.js';
import { createDeadline, type Deadline } from './deadline.js';
import { backoffDelay, isRetryable } from './retry.js';

/** One try's resources. A stream keeps them until it ends; anything else releases them on return. */
interface Lease {
  deadline: Deadline;
  keep(): () => void;
}

type AttemptFn<T> = (adapter: ProviderAdapter, deployment: Deployment, lease: Lease) => Promise<T>;

/** What the failed candidates left: their errors, and when each one that is resting after a 429 may be called again. */
interface Failures {
  errors: GatewayError[];
  restsUntil: number[];
}

export async function dispatchChat(ctx: RequestContext): Promise<void> {
  if (ctx.stream) {
    // A stream's audit intent is written while the provider works, not after its first chunk (server/handle.ts).
    // A JSON answer's waits for the answer: the intents of the answers that arrive in one turn share one write(),
    // where written at dispatch each request paid a write() of its own (the workload lost ~30% of its throughput).
    ctx.promiseAudit?.();
    const includeUsage = ctx.chat!.stream_options?.include_usage === true;
    ctx.reply = { kind: 'stream', chunks: await callWithFallback(ctx, openStream(ctx)), includeUsage };
    return;
  }
  const answer = await callWithFallback<ChatAnswer>(ctx, async (adapter, d, lease) => {
    refuseUnsupported(ctx, d);
    // A Responses request to an upstream that speaks the API goes out as itself; a Messages request rides along as ctx.native.
    const native = ctx.responses ? nativeResponsesRequest(ctx, d) : undefined;
    if (ctx.responses) ctx.responses.sentNative = native !== undefined && adapter.responses !== undefined;
    return native && adapter.responses ? { completion: await adapter.responses(native, d, lease.deadline) } : adapter.chat(ctx.chat!, d, lease.deadline, ctx.native);
  });
  ctx.usage = answer.completion.usage;
  // The upstream's text rides along while no reply stage changes the completion (see Reply).
  ctx.reply = { kind: 'json', status: 200, body: answer.completion, text: answer.text };
}

export async function dispatchEmbeddings(ctx: RequestContext): Promise<void> {
  const response = await callWithFallback<EmbeddingsResponse>(ctx, (adapter, d, lease) => adapter.embed(ctx.embeddings!, d, lease.deadline));
  ctx.usage = { prompt_tokens: response.usage.prompt_tokens, completion_tokens: 0, total_tokens: response.usage.total_tokens };
  ctx.reply = { kind: 'json', status: 200, body: response };
}

/** A request only its own API can serve is refused by any other upstream, never sent with parts silently dropped. */
function refuseUnsupported(ctx: RequestContext, deployment: Deployment): void {
  const unsupported = ctx.native?.unsupported;
  if (unsupported && deployment.provider.type !== ctx.native!.provider) throw new GatewayError('invalid_request', unsupported.message, { param: unsupported.param });
}

async function callWithFallback<T>(ctx: RequestContext, attempt: AttemptFn<T>): Promise<T> {
  const failures: Failures = { errors: [], restsUntil: [] };
  const first = await tryCandidates(ctx, ctx.candidates, attempt, failures, false);
  if (first.ok) return first.value;

  const degrade = ctx.model?.degrade;
  const target = degrade && ctx.config.models.get(degrade.model);
  if (degrade && target && ctx.chat && !ctx.cancel.aborted) {
    const tried = new Set(ctx.attempts.map((a) => a.deployment));
    const candidates = candidatesFor(ctx, target, false).filter((d) => !tried.has(d.id));
    ctx.chat = degradedRequest(ctx.chat, degrade);
    ctx.events.push({ stage: 'degrade', model: degrade.model });
    const safe = await tryCandidates(ctx, candidates, attempt, failures, true);
    if (safe.ok) {
      ctx.degraded = true;
      ctx.responseHeaders['x-gateway-degraded'] = '1';
      return safe.value;
    }
  }
  throw aggregate(ctx, failures);
}

async function tryCandidates<T>(
  ctx: RequestContext,
  candidates: readonly Deployment[],
  attempt: AttemptFn<T>,
  failures: Failures,
  degraded: boolean,
): Promise<{ ok: true; value: T } | { ok: false }> {
  const { errors } = failures;
  for (const deployment of candidates) {
    const health = ctx.services.health.get(deployment);
    const adapter = ctx.config.adapters.get(deployment.providerName)!;
    health.retryBudget.onRequest(Date.now());

    for (let retry = 0; ; retry++) {
      const fallback = errors.length > 0 && retry === 0;
      const resting = health.coolingFor(Date.now());
      if (resting > 0) {
        // The provider asked for a pause: calling now would only earn another 429.
        const error = new GatewayError('upstream_rate_limited', `Deployment "${deployment.id}" is rate limited by its provider for ${Math.ceil(resting / 1000)} s more.`, {
          retryAfter: Math.ceil(resting / 1000),
          upstream: { errorClass: 'cooling_down', fallbackable: true },
        });
        recordAttempt(ctx, deployment, performance.now(), { error, retry, fallback, degraded });
        errors.push(error);
        failures.restsUntil.push(health.coolingUntil);
        break;
      }
      if (!health.breaker.allow(Date.now())) {
        const error = new GatewayError('upstream_unavailable', `Deployment "${deployment.id}" is cooling down after repeated failures.`, {
          retryAfter: health.breaker.retryAfterSeconds(Date.now()),
          upstream: { errorClass: 'breaker_open', fallbackable: true },
        });
        recordAttempt(ctx, deployment, performance.now(), { error, retry, fallback, degraded });
        errors.push(error);
        break;
      }

      // The deployment's admission slot: a full one sheds to the next candidate.
      let leave: () => void;
      const queued = performance.now();
      try {
        const slot = admitAttempt(ctx, deployment);
        leave = slot instanceof Promise ? await slot : slot;
      } catch (err) {
        // No call was made: the half-open probe this attempt may have claimed goes back, or the breaker would wait for it forever.
        health.breaker.onAbandon();
        const error = toGatewayError(err);
        if (ctx.cancel.aborted) throw error;
        recordAttempt(ctx, deployment, queued, { error, retry, fallback, degraded });
        errors.push(error);
        break;
      }

      const started = performance.now();
      const span = ctx.trace?.attempt(deployment, { retry, fallback, degraded });
      const deadline = createDeadline(ctx.cancel, deployment.timeouts.total_ms);
      health.inflight++;
      let kept = false;
      let released = false;
      const release = () => {
        if (released) return;
        released = true;
        deadline.clear();
        health.inflight--;
        leave();
      };
      const lease: Lease = {
        deadline,
        keep: () => {
          kept = true;
          return release;
        },
      };
      try {
        const value = await (span ? span.run(() => attempt(adapter, deployment, lease)) : attempt(adapter, deployment, lease));
        const now = Date.now();
        health.breaker.onSuccess(now);
        health.observe(performance.now() - started, now);
        recordAttempt(ctx, deployment, started, { retry, fallback, degraded, span });
        commit(ctx, deployment);
        return { ok: true, value };
      } catch (err) {
        const error = toGatewayError(err);
        recordAttempt(ctx, deployment, started, { error, retry, fallback, degraded, span });
        if (ctx.cancel.aborted) {
          health.breaker.onAbandon();
          // A run limit ended the request: say so, not "cancelled".
          throw ctx.cancel.reason instanceof GatewayError ? ctx.cancel.reason : error;
        }
        if (!error.upstream?.fallbackable) {
          // The request was at fault, not the deployment.
          health.breaker.onSuccess(Date.now());
          throw error;
        }
        errors.push(error);
        if (error.upstream.status === 429) {
          // Not a health failure: rest this deployment for what the provider
          // asked, and move on rather than wait here (the client's SDK honours
          // retry-after itself, and waiting in both places multiplies calls).
          const cool = deployment.rateLimitCooldown;
          const now = Date.now();
          health.coolDown(now + Math.min(error.upstream.retryAfterMs ?? cool.default_ms, cool.max_ms));
          if (health.coolingUntil > now) failures.restsUntil.push(health.coolingUntil);
          health.breaker.onAbandon();
          break;
        }
        if (countsAgainstBreaker(error)) health.breaker.onFailure(Date.now());
        else health.breaker.onAbandon();
        const wait = retryDelay(error, retry, deployment);
        if (wait === undefined || !health.retryBudget.tryRetry(Date.now())) break;
        release();
        try {
          await sleep(wait, undefined, { signal: ctx.signal });
        } catch {
          throw error; // the client left while we waited
        }
      } finally {
        if (!kept) release();
      }
    }
  }
  return { ok: false };
}

function retryDelay(error: GatewayError, retry: number, deployment: Deployment): number | undefined {
  const config = deployment.retry;
  if (retry >= config.max_retries || !isRetryable(error)) return undefined;
  if (error.retryAfter !== undefined) {
    const ms = error.retryAfter * 1000;
    // Waiting longer than this is worse than trying the next candidate.
    return ms <= config.max_retry_after_ms ? ms : undefined;
  }
  return backoffDelay(retry, config);
}

/**
 * Streams commit to a deployment when its first content chunk arrives, not
 * when its headers do, so a provider that answers 200 and then stalls is still
 * replaced within the first-byte timeout. After that there is no switching.
 */
function openStream(ctx: RequestContext): AttemptFn<AsyncIterable<ChatChunk>> {
  return async (adapter, deployment, lease) => {
    refuseUnsupported(ctx, deployment);
    const native = ctx.responses ? nativeResponsesRequest(ctx, deployment) : undefined;
    if (ctx.responses) ctx.responses.sentNative = native !== undefined && adapter.responsesStream !== undefined;
    const chunks =
      native && adapter.responsesStream ? adapter.responsesStream(native, deployment, lease.deadline) : adapter.chatStream(ctx.chat!, deployment, lease.deadline, ctx.native);
    const iterator = chunks[Symbol.asyncIterator]();
    const head: ChatChunk[] = [];
    try {
      lease.deadline.armFirstByte(deployment.timeouts.first_byte_ms);
      for (;;) {
        const next = await iterator.next();
        if (next.done) break;
        head.push(next.value);
        if (hasContent(next.value)) break;
      }
      lease.deadline.clearFirstByte();
    } catch (err) {
      void iterator.return?.(undefined)?.catch(() => {});
      throw err;
    }
    const health = ctx.services.health.get(deployment);
    // A provider that keeps cutting streams after their first chunk must still trip its breaker.
    const onFailure = (err: unknown) => {
      if (!ctx.cancel.aborted && countsAgainstBreaker(toGatewayError(err))) health.breaker.onFailure(Date.now());
    };
    return streamFrom(head, iterator, lease.keep(), onFailure);
  };
}

async function* streamFrom(
  head: ChatChunk[],
  iterator: AsyncIterator<ChatChunk>,
  release: () => void,
  onFailure: (err: unknown) => void,
): AsyncGenerator<ChatChunk> {
  try {
    yield* head;
    for (;;) {
      const next = await iterator.next();
      if (next.done) return;
      yield next.value;
    }
  } catch (err) {
    onFailure(err);
    throw err;
  } finally {
    release();
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

function degradedRequest(chat: ChatRequest, degrade: DegradeConfig): ChatRequest {
  const cap = (v: number | null | undefined) => Math.min(v ?? degrade.max_tokens, degrade.max_tokens);
  const out: ChatRequest = { ...chat, messages: [{ role: 'system', content: degrade.notice }, ...chat.messages] };
  if (chat.max_completion_tokens != null) out.max_completion_tokens = cap(chat.max_completion_tokens);
  else out.max_tokens = cap(chat.max_tokens);
  return out;
}

function commit(ctx: RequestContext, deployment: Deployment): void {
  ctx.deployment = deployment;
  ctx.responseHeaders['x-gateway-provider'] = deployment.providerName;
  ctx.responseHeaders['x-gateway-deployment'] = deployment.id;
}

function recordAttempt(
  ctx: RequestContext,
  deployment: Deployment,
  started: number,
  o: { error?: GatewayError; retry: number; fallback: boolean; degraded: boolean; span?: AttemptSpan | undefined },
): void {
  const { error } = o;
  const attempt: Attempt = {
    deployment: deployment.id,
    provider: deployment.providerName,
    startMs: Math.round((started - ctx.startedAt) * 1000) / 1000,
    latencyMs: Math.round((performance.now() - started) * 1000) / 1000,
    retry: o.retry,
    fallback: o.fallback,
    ...(o.degraded ? { degraded: true } : {}),
    ...(error ? { code: error.code, errorClass: error.upstream?.errorClass, status: error.upstream?.status } : { status: 200 }),
  };
  ctx.attempts.push(attempt);
  o.span?.end(attempt);
}

/**
 * One candidate's error passes through as it is (an upstream 429 stays a 429).
 * When several candidates were all rate limited by their providers, the
 * client gets that 429 too (upstream_rate_limited, not the gateway's own
 * rate_limited: its key did nothing wrong), with a retry-after at the first
 * moment one of them may be called again. When several failed otherwise,
 * nothing could answer: 503 with retry-after.
 */
function aggregate(ctx: RequestContext, failures: Failures): GatewayError {
  const { errors } = failures;
  const deployments = new Set(ctx.attempts.map((a) => a.deployment));
  const last = errors.at(-1);
  if (!last) {
    return new GatewayError('upstream_unavailable', `No deployment of model "${ctx.requestedModel}" is available right now. Retry later.`, { retryAfter: 1 });
  }
  if (deployments.size <= 1) return last;
  if (errors.every((e) => e.code === 'overloaded')) {
    return new GatewayError('overloaded', `Every deployment of model "${ctx.requestedModel}" is at capacity. Retry after the indicated delay.`, { retryAfter: last.retryAfter });
  }
  const summary = ctx.attempts.map((a) => `${a.deployment}: ${a.code ?? 'ok'}`).join('; ');
  if (errors.every((e) => e.code === 'upstream_rate_limited')) {
    const earliest = failures.restsUntil.length > 0 ? Math.min(...failures.restsUntil) : Date.now() + 1000;
    return new GatewayError(
      'upstream_rate_limited',
      `Every deployment of model "${ctx.requestedModel}" is rate limited by its provider (${summary}). Retry after the indicated delay.`,
      { retryAfter: Math.max(1, Math.ceil((earliest - Date.now()) / 1000)), upstream: { errorClass: last.upstream?.errorClass ?? 'status', fallbackable: true } },
    );
  }
  const waits = errors.map((e) => e.retryAfter).filter((s): s is number => s !== undefined);
  return new GatewayError(
    'upstream_unavailable',
    `No deployment of model "${ctx.requestedModel}" could answer (${summary}). Retry after the indicated delay.`,
    { retryAfter: waits.length > 0 ? Math.min(...waits) : 1, upstream: { errorClass: last.upstream?.errorClass ?? 'connect', fallbackable: true } },
  );
}
