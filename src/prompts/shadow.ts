// Shadow runs: for a pin's sampled share of live requests, the shadow version
// runs too, in the background, and both answers go into the audit trail side
// by side (kind "shadow_run") with the eval set's checks applied where they fit.
//
// The shadow never touches the live reply: the render stage only decides the
// sample; the run is handed over from the request's cleanups, which run once
// the reply has been sent, and starts on a later turn of the event loop. Runs
// wait in a bounded queue for one of max_concurrent slots; a full queue drops
// the run (counted), it never grows without bound. A shadow run goes through
// the same stages as any request (lane, detectors, routing, breakers, budgets)
// but never the cache and never the response guard (it creates no approvals),
// as an identity of its own: key, app and team prefixed "shadow:", so budgets
// per key, app or team count it apart from the app's own spend.
import type { IncomingHttpHeaders } from 'node:http';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { Usage } from '../api/schemas.js';
import type { AuditSink } from '../audit/transport/writer.js';
import { AUDIT_RECORD_VERSION } from '../audit/schema.js';
import { costNano } from '../budget/pricing.js';
import type { CompiledConfig, KeyInfo } from '../config/compile.js';
import { toGatewayError, type GatewayError } from '../errors.js';
import { outputOf, runPlainChecks, type CompiledCheck, type EvalOutput } from '../evals/checks.js';
import { deepEqual } from '../evals/json-schema.js';
import { createContext, type RequestContext, type Services, type ShadowRunner } from '../pipeline/context.js';
import { finishRequest, runRequest } from '../pipeline/run.js';
import type { Pipeline } from '../pipeline/stage.js';
import type { Logger } from '../telemetry/logger.js';
import type { ShadowRunRecord, ShadowRunSide } from './audit-events.js';
import { defaultEvalSet } from './catalog.js';
import type { ShadowPlan } from './types.js';
import { sha256Hex } from '../sha256.js';

export interface ShadowRunnerOptions {
  /** The pipeline a shadow run goes through (pipeline/index.ts: shadowChatPipeline). */
  stages: Pipeline;
  services: () => Services;
  audit: AuditSink;
  logger: Logger;
  registry: Registry;
}

interface Job {
  plan: ShadowPlan;
  config: CompiledConfig;
  requestId: string;
  key: KeyInfo;
  shadowKey: KeyInfo;
  lane: string | null;
  bodies: 'full' | 'redacted' | 'hash';
  headers: IncomingHttpHeaders;
  live: { side: ShadowRunSide; output: EvalOutput | undefined };
  time: string;
}

/** Headers a shadow run must not inherit: credentials, and those that named the live request's lane or prompt. */
const DROPPED_HEADERS = new Set(['authorization', 'api-key', 'cookie', 'x-gateway-lane', 'x-gateway-prompt', 'content-length', 'transfer-encoding', 'connection']);

export function createShadowRunner(o: ShadowRunnerOptions): ShadowRunner {
  const registers = [o.registry];
  const runs = new Counter({
    name: 'lanegate_prompt_shadow_runs_total',
    help: 'Shadow runs by prompt, shadow version and outcome: ok, error (the shadow failed), dropped (queue full or shutdown), skipped (the live request failed or the audit trail is off).',
    labelNames: ['prompt', 'version', 'outcome'],
    registers,
  });
  const agreement = new Counter({
    name: 'lanegate_prompt_shadow_agreement_total',
    help: 'Completed shadow runs by whether the shadow answered the same as live.',
    labelNames: ['prompt', 'version', 'agreement'],
    registers,
  });
  const tokens = new Counter({
    name: 'lanegate_prompt_shadow_tokens_total',
    help: 'Tokens spent by shadow runs, by prompt, shadow version and direction.',
    labelNames: ['prompt', 'version', 'direction'],
    registers,
  });
  const queue: Job[] = [];
  const running = new Set<AbortController>();
  new Gauge({
    name: 'lanegate_prompt_shadow_pending',
    help: 'Shadow runs queued or running.',
    registers,
    collect() {
      this.set(queue.length + running.size);
    },
  });
  let idle: Array<() => void> = [];
  let scheduled = false;

  function settleIdle(): void {
    if (queue.length > 0 || running.size > 0) return;
    const waiters = idle;
    idle = [];
    for (const w of waiters) w();
  }

  function pump(): void {
    scheduled = false;
    while (queue.length > 0) {
      const job = queue[0]!;
      if (running.size >= job.config.prompts.shadow.max_concurrent) return;
      queue.shift();
      const abort = new AbortController();
      running.add(abort);
      void run(job, abort)
        .catch((err: unknown) => o.logger.error({ err: String(err), requestId: job.requestId }, 'shadow run failed unexpectedly'))
        .finally(() => {
          running.delete(abort);
          pump();
          settleIdle();
        });
    }
  }

  async function run(job: Job, abort: AbortController): Promise<void> {
    const { plan } = job;
    const ctx = createContext({
      id: `${job.requestId}/shadow`,
      endpoint: 'chat',
      config: job.config,
      services: o.services(),
      headers: job.headers,
      signal: abort.signal,
      // Background work: it waits for a deployment's slot behind every live request, not with its live request's priority.
      priority: 'low',
      internal: 'shadow',
      readBody: async () => plan.body,
    });
    ctx.key = job.shadowKey;
    const started = performance.now();
    let error: GatewayError | undefined;
    try {
      await runRequest(o.stages, ctx);
    } catch (err) {
      error = toGatewayError(err);
    }
    const latency = round(performance.now() - started);
    const reply = ctx.reply;
    const status = error ? error.status : reply?.kind === 'json' ? reply.status : 200;
    const output = !error && reply?.kind === 'json' && reply.status < 300 ? outputOf(reply.body) : undefined;
    ctx.error = error;
    ctx.status = status;
    // A shadow call spends real money: the after phase writes it as a request
    // record too (key, app and team `shadow:<live one's>`, as the spend metric
    // labels it), so costs and /admin/usage count it apart from the live
    // request. Settlement goes on in the background: the record does not wait for it.
    void finishRequest(o.stages, ctx, { clientDisconnected: false, audit: o.audit });

    const set = defaultEvalSet(job.config.prompts, plan.prompt);
    const matched = set?.cases.find((c) => deepEqual(c.variables, plan.variables ?? {}));
    const checks: CompiledCheck[] = [...(set?.shadowChecks ?? []), ...(matched?.checks ?? [])];
    const liveChecks = job.live.output ? runPlainChecks(checks, job.live.output) : [];
    const shadowChecks = output ? runPlainChecks(checks, output) : [];
    const agree = job.live.output && output ? sameAnswer(job.live.output, output) : null;

    const usage = ctx.usage;
    const shadowSide: ShadowRunSide = {
      version: plan.shadowVersion,
      model: ctx.model?.name ?? null,
      deployment: ctx.deployment?.id ?? null,
      status,
      error_code: error?.code ?? null,
      latency_ms: latency,
      usage: usageOf(usage),
      cost_usd: ctx.cost?.usd ?? null,
      output: job.bodies === 'full' && output ? output : null,
      output_sha256: output ? hashOutput(output) : null,
      checks: shadowChecks,
    };
    job.live.side.checks = liveChecks;
    const record: ShadowRunRecord = {
      v: AUDIT_RECORD_VERSION,
      kind: 'shadow_run',
      id: ctx.id,
      time: job.time,
      request_id: job.requestId,
      key_id: job.key.id,
      app: job.key.app,
      team: job.key.team,
      lane: job.lane,
      model: `prompt:${plan.prompt}`,
      prompt: plan.prompt,
      bodies: job.bodies,
      checks_from: set && checks.length > 0 ? { set: `${set.name}@${set.version}`, case: matched?.id ?? null } : null,
      agreement: agree,
      live: job.live.side,
      shadow: shadowSide,
    };
    o.audit.write(record);

    runs.labels(plan.prompt, plan.shadowVersion, error ? 'error' : 'ok').inc();
    if (agree !== null) agreement.labels(plan.prompt, plan.shadowVersion, String(agree)).inc();
    if (usage) {
      tokens.labels(plan.prompt, plan.shadowVersion, 'input').inc(usage.prompt_tokens);
      tokens.labels(plan.prompt, plan.shadowVersion, 'output').inc(usage.completion_tokens);
    }
  }

  return {
    afterLive(live, plan) {
      const skip = () => runs.labels(plan.prompt, plan.shadowVersion, 'skipped').inc();
      // The record is the point of a shadow run; without an audit trail it would only cost.
      if (!o.audit.enabled || !live.key || !live.policy) return skip();
      const status = live.status ?? 0;
      if (live.error || status < 200 || status >= 300) return skip();
      const config = live.config;
      if (queue.length >= config.prompts.shadow.max_queue) {
        runs.labels(plan.prompt, plan.shadowVersion, 'dropped').inc();
        return;
      }
      const lane = live.policy.lane;
      const bodies = lane.audit.bodies;
      const output = liveOutput(live);
      const key = live.key;
      const headers: IncomingHttpHeaders = {};
      for (const [name, value] of Object.entries(live.headers)) if (!DROPPED_HEADERS.has(name)) headers[name] = value;
      queue.push({
        plan,
        config,
        requestId: live.id,
        key,
        shadowKey: { id: `shadow:${key.id}`, app: `shadow:${key.app}`, team: `shadow:${key.team}`, models: undefined, lane: lane.name, lanes: new Set([lane.name]) },
        lane: lane.name,
        bodies,
        headers,
        time: new Date().toISOString(),
        live: {
          output,
          side: {
            version: plan.liveVersion,
            model: live.model?.name ?? null,
            deployment: live.deployment?.id ?? null,
            status,
            error_code: null,
            // Until the reply was sent: what the app waited.
            latency_ms: round(performance.now() - live.startedAt),
            usage: usageOf(live.usage),
            cost_usd: live.cost?.usd ?? liveCost(live),
            output: bodies === 'full' && output ? output : null,
            output_sha256: output ? hashOutput(output) : null,
            checks: [],
          },
        },
      });
      if (!scheduled) {
        scheduled = true;
        setImmediate(pump);
      }
    },

    async drain(ms) {
      if (queue.length === 0 && running.size === 0) return;
      await Promise.race([new Promise<void>((resolve) => idle.push(resolve)), new Promise<void>((resolve) => setTimeout(resolve, ms).unref())]);
      for (const job of queue.splice(0)) runs.labels(job.plan.prompt, job.plan.shadowVersion, 'dropped').inc();
      for (const abort of running) abort.abort(new Error('the gateway is shutting down'));
      if (running.size > 0) await new Promise<void>((resolve) => idle.push(resolve));
    },

    pending: () => queue.length + running.size,
  };
}

function liveOutput(live: RequestContext): EvalOutput | undefined {
  const reply = live.reply;
  if (!reply) return undefined;
  if (reply.kind === 'json') return outputOf(reply.body);
  const assembled = live.assembled?.result();
  return assembled ? outputOf(assembled) : undefined;
}

function liveCost(live: RequestContext): number | null {
  if (!live.usage || !live.deployment) return null;
  return costNano(live.config.limits.prices.priceOf(live.deployment), live.usage) / 1e9;
}

function usageOf(u: Usage | undefined): ShadowRunSide['usage'] {
  return u ? { prompt_tokens: u.prompt_tokens, completion_tokens: u.completion_tokens, total_tokens: u.total_tokens } : null;
}

function hashOutput(output: EvalOutput): string {
  return sha256Hex(JSON.stringify(output));
}

function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}

/** Same text (whitespace collapsed) and the same tool calls (names and parsed arguments). */
export function sameAnswer(a: EvalOutput, b: EvalOutput): boolean {
  const norm = (s: string | null) => (s ?? '').trim().replace(/\s+/g, ' ');
  if (norm(a.content) !== norm(b.content)) return false;
  if (a.tool_calls.length !== b.tool_calls.length) return false;
  const args = (s: string): unknown => {
    try {
      return JSON.parse(s);
    } catch {
      return s;
    }
  };
  return a.tool_calls.every((c, i) => c.name === b.tool_calls[i]!.name && deepEqual(args(c.arguments), args(b.tool_calls[i]!.arguments)));
}

