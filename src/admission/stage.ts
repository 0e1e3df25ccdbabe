// Admission: the global gate right after authentication (before the body is
// read, so waiting requests hold no body), and a deployment's gate at each
// dispatch attempt (so a full deployment lets fallback try the next
// candidate). A request waits in queues for at most queue_timeout_ms in all;
// a shed request gets a fast 503 `overloaded` with retry-after.
import { GatewayError } from '../errors.js';
import type { RequestContext } from '../pipeline/context.js';
import type { Deployment } from '../providers/types.js';
import { deploymentLimitsOf, GLOBAL_GATE, globalLimitsOf } from './control.js';
import type { AdmissionGate, Priority, WaitOutcome } from './gate.js';

const NO_SLOT = () => {};

/** Stage: takes a global slot, held until the request is over (a stream until it ends or the client leaves). */
export function admitRequest(ctx: RequestContext): void | Promise<void> {
  const control = ctx.services.admission;
  const config = ctx.config.raw.admission;
  if (!control || !config.enabled) return;
  const gate = control.gate(GLOBAL_GATE, globalLimitsOf(config));
  // The body is not read yet: only the header can raise or lower priority here.
  const admitted = enter(ctx, gate, GLOBAL_GATE, headerPriority(ctx));
  if (admitted === true) return void (ctx.admissionSlot = leaveOf(gate));
  return admitted.then(() => void (ctx.admissionSlot = leaveOf(gate)));
}

/** After stage: gives the global slot back, first, so a waiting request moves as soon as this one is over. */
export function releaseAdmission(ctx: RequestContext): void {
  const leave = ctx.admissionSlot;
  ctx.admissionSlot = undefined;
  leave?.();
}

/**
 * A slot of the deployment's gate for one attempt; the returned function
 * gives it back (the dispatch lease calls it exactly once). A shed is a
 * fallbackable error, so the next candidate is tried.
 */
export function admitAttempt(ctx: RequestContext, deployment: Deployment): (() => void) | Promise<() => void> {
  const control = ctx.services.admission;
  if (!control || !ctx.config.raw.admission.enabled) return NO_SLOT;
  const gate = control.gate(deployment.id, deploymentLimitsOf(ctx.config, deployment));
  const admitted = enter(ctx, gate, deployment.id, priorityOf(ctx), deployment);
  return admitted === true ? leaveOf(gate) : admitted.then(() => leaveOf(gate));
}

/** Called once the slot is taken; its caller releases exactly once. */
function leaveOf(gate: AdmissionGate): () => void {
  const since = performance.now();
  return () => gate.leave(performance.now() - since);
}

function enter(ctx: RequestContext, gate: AdmissionGate, id: string, priority: Priority, deployment?: Deployment): true | Promise<void> {
  const metrics = ctx.services.admission!.metrics;
  if (gate.tryEnter(priority)) {
    metrics.wait.labels(id).observe(0);
    return true;
  }
  const config = ctx.config.raw.admission;
  const started = performance.now();
  const outcome = gate.wait(priority, config.queue_timeout_ms - ctx.queueWaitMs, ctx.signal);
  const settle = (result: WaitOutcome): void => {
    const waited = performance.now() - started;
    ctx.queueWaitMs += waited;
    if (result === 'admitted') {
      metrics.wait.labels(id).observe(waited / 1000);
      return;
    }
    if (result === 'aborted') {
      // A run limit's own error says what ended it; a client that left sees nothing either way.
      const reason = ctx.cancel.reason;
      throw reason instanceof GatewayError ? reason : new GatewayError('overloaded', 'The request was cancelled while it waited for capacity.');
    }
    metrics.shed.labels(id, result).inc();
    ctx.events.push({ stage: 'admission', gate: id, shed: result });
    throw overloaded(ctx, gate, result, deployment);
  };
  if (!(outcome instanceof Promise)) {
    settle(outcome);
    return true;
  }
  return outcome.then(settle);
}

function overloaded(ctx: RequestContext, gate: AdmissionGate, reason: WaitOutcome, deployment: Deployment | undefined): GatewayError {
  const retryAfter = ctx.config.raw.admission.retry_after_s;
  const why = reason === 'queue_timeout' ? 'no slot freed up in time' : reason === 'expected_wait' ? 'no slot would free up in time' : 'its wait queue is full';
  const where = deployment ? `Deployment "${deployment.id}"` : 'The gateway';
  const message = `${where} is at capacity (${gate.limits.maxInflight} requests in flight; ${why}). Retry after the indicated delay.`;
  // A deployment's shed is its own capacity, not a fault: fallback moves on, the breaker is not told.
  return new GatewayError('overloaded', message, { retryAfter, ...(deployment ? { upstream: { errorClass: 'shed', fallbackable: true } } : {}) });
}

function priorityOf(ctx: RequestContext): Priority {
  if (ctx.priority) return ctx.priority;
  const header = ctx.headers['x-gateway-priority'];
  return toPriority(typeof header === 'string' ? header : ctx.chat?.metadata?.priority);
}

function headerPriority(ctx: RequestContext): Priority {
  if (ctx.priority) return ctx.priority;
  const header = ctx.headers['x-gateway-priority'];
  return toPriority(typeof header === 'string' ? header : undefined);
}

function toPriority(value: unknown): Priority {
  return value === 'high' || value === 'low' ? value : 'normal';
}
