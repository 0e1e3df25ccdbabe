// Runs an eval set against one prompt version through the gateway's own
// pipeline, in this process: the template is rendered, the lane applied, the
// model routed and called (with retries, breakers and budgets) exactly as for
// an app, except that the caller is the gateway itself (no key, no cache, no
// response guard). Any configured model works, the built-in mock included.
import type { CompiledConfig, KeyInfo } from '../config/compile.js';
import { toGatewayError, type GatewayError } from '../errors.js';
import { createContext, type Services } from '../pipeline/context.js';
import { finishRequest, runRequest } from '../pipeline/run.js';
import type { Pipeline } from '../pipeline/stage.js';
import { EVAL_IDENTITY, type AuditRequestRecord } from '../audit/schema.js';
import { PROMPT_MODEL_PREFIX } from '../prompts/stage.js';
import { outputOf, runChecks, type CheckResult, type CompiledCheck, type EvalOutput, type Judge } from './checks.js';
import type { EvalSet } from './load.js';

export interface CaseResult {
  id: string;
  pass: boolean;
  /** The request failed (bad variables for this version, an upstream error...). */
  error: { code: string; message: string } | null;
  checks: CheckResult[];
  output: EvalOutput | null;
  model: string | null;
  deployment: string | null;
  latency_ms: number;
  usage: { prompt_tokens: number; completion_tokens: number; total_tokens: number } | null;
  cost_usd: number | null;
}

export interface EvalReport {
  object: 'eval.report';
  prompt: string;
  version: string;
  template_sha256: string;
  model: string;
  set: string;
  set_sha256: string;
  threshold: number;
  config_file: string;
  started_at: string;
  finished_at: string;
  cases: CaseResult[];
  summary: {
    cases: number;
    passed: number;
    failed: number;
    errored: number;
    pass_rate: number;
    threshold: number;
    gate: 'pass' | 'fail';
    tokens: { prompt: number; completion: number; total: number };
    cost_usd: number;
    latency_ms: { p50: number; p95: number; max: number };
  };
}

export interface EvalRunOptions {
  config: CompiledConfig;
  services: Services;
  /** pipeline/index.ts: internalChatPipeline. */
  stages: Pipeline;
  prompt: string;
  version: string;
  set: EvalSet;
  /** Cases run at once (default 4). */
  concurrency?: number;
  onCase?: (result: CaseResult) => void;
  signal?: AbortSignal;
  /** Collects each call's request record (cases and judges: they spend real money), for the caller to write. */
  records?: AuditRequestRecord[];
}

const JUDGE_SYSTEM = `You grade one answer of an AI assistant against a rubric.
Read the rubric and the answer, give a one-line reason, then end with a line
that is exactly "VERDICT: PASS" or "VERDICT: FAIL".`;

/** The last "VERDICT: PASS|FAIL" in a judge's reply (a model may mention both while reasoning). */
export function parseVerdict(text: string): 'pass' | 'fail' | undefined {
  let verdict: 'pass' | 'fail' | undefined;
  for (const m of text.matchAll(/\bverdict\s*[:=]\s*"?(pass|fail)\b/gi)) verdict = m[1]!.toLowerCase() as 'pass' | 'fail';
  return verdict;
}

/** The identity evals run as: in the default lane, allowed every model. */
export function evalKey(config: CompiledConfig): KeyInfo {
  const lane = config.policies.defaultLane;
  return { id: EVAL_IDENTITY, app: EVAL_IDENTITY, team: EVAL_IDENTITY, models: undefined, lane, lanes: new Set([lane]) };
}

interface Call {
  completion: unknown;
  error: GatewayError | undefined;
  latencyMs: number;
  model: string | null;
  deployment: string | null;
  usage: CaseResult['usage'];
  costUsd: number | null;
}

export async function runInternal(o: Pick<EvalRunOptions, 'config' | 'services' | 'stages' | 'signal' | 'records'>, id: string, body: Record<string, unknown>): Promise<Call> {
  const ctx = createContext({
    id,
    endpoint: 'chat',
    config: o.config,
    services: o.services,
    headers: {},
    ...(o.signal ? { signal: o.signal } : {}),
    internal: 'eval',
    readBody: async () => body,
  });
  ctx.key = evalKey(o.config);
  const started = performance.now();
  let error: GatewayError | undefined;
  try {
    await runRequest(o.stages, ctx);
  } catch (err) {
    error = toGatewayError(err);
  }
  ctx.error = error;
  ctx.status = error ? error.status : ctx.reply?.kind === 'json' ? ctx.reply.status : 200;
  // The report's spend is settled before the next case reserves. Eval calls
  // spend real money, so each is a request record (identity _eval), collected
  // for the caller to write to the _eval chain.
  const records = o.records;
  await finishRequest(o.stages, ctx, { clientDisconnected: false, audit: records && { enabled: true, write: (entry) => records.push(entry as AuditRequestRecord) } });
  const reply = ctx.reply;
  const u = ctx.usage;
  return {
    completion: !error && reply?.kind === 'json' && reply.status < 300 ? reply.body : undefined,
    error,
    latencyMs: Math.round((performance.now() - started) * 1000) / 1000,
    model: ctx.model?.name ?? null,
    deployment: ctx.deployment?.id ?? null,
    usage: u ? { prompt_tokens: u.prompt_tokens, completion_tokens: u.completion_tokens, total_tokens: u.total_tokens } : null,
    costUsd: ctx.cost?.usd ?? null,
  };
}

export async function runEval(o: EvalRunOptions): Promise<EvalReport> {
  const template = o.config.prompts.templates.get(o.prompt)?.get(o.version);
  if (!template) throw new Error(`no prompt template ${o.prompt}@${o.version}`);
  const startedAt = new Date();
  const results: CaseResult[] = new Array(o.set.cases.length);

  const judge: Judge = async (check: Extract<CompiledCheck, { type: 'judge' }>, output: EvalOutput) => {
    const model = check.model ?? o.set.judgeModel!;
    const answer = output.content ?? JSON.stringify({ tool_calls: output.tool_calls });
    const call = await runInternal(o, `eval-judge-${Date.now()}`, {
      model,
      temperature: 0,
      messages: [
        { role: 'system', content: `${JUDGE_SYSTEM}\n\nRubric:\n${check.rubric}` },
        { role: 'user', content: `Answer to grade:\n${answer}` },
      ],
    });
    if (call.error) return { type: 'judge', pass: false, detail: `the judge (${model}) failed: ${call.error.code}` };
    const reply = outputOf(call.completion).content ?? '';
    const verdict = parseVerdict(reply);
    if (!verdict) return { type: 'judge', pass: false, detail: `the judge (${model}) gave no VERDICT line` };
    const reason = reply.replace(/\bverdict\s*[:=][\s\S]*$/i, '').trim().split('\n').at(-1) ?? '';
    return { type: 'judge', pass: verdict === 'pass', ...(reason ? { detail: reason.slice(0, 160) } : {}) };
  };

  let next = 0;
  const worker = async () => {
    for (;;) {
      const i = next++;
      if (i >= o.set.cases.length) return;
      const c = o.set.cases[i]!;
      const call = await runInternal(o, `eval-${o.set.name}-${c.id}`, { model: `${PROMPT_MODEL_PREFIX}${o.prompt}@${o.version}`, variables: c.variables });
      let checks: CheckResult[] = [];
      let output: EvalOutput | null = null;
      if (!call.error) {
        output = outputOf(call.completion);
        checks = await runChecks(c.checks, output, judge);
      }
      const result: CaseResult = {
        id: c.id,
        pass: !call.error && checks.every((r) => r.pass),
        error: call.error ? { code: call.error.code, message: call.error.message } : null,
        checks,
        output,
        model: call.model,
        deployment: call.deployment,
        latency_ms: call.latencyMs,
        usage: call.usage,
        cost_usd: call.costUsd,
      };
      results[i] = result;
      o.onCase?.(result);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(o.concurrency ?? 4, o.set.cases.length)) }, worker));

  const passed = results.filter((r) => r.pass).length;
  const errored = results.filter((r) => r.error).length;
  const passRate = results.length === 0 ? 0 : passed / results.length;
  const latencies = results.map((r) => r.latency_ms).sort((a, b) => a - b);
  const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.ceil(p * latencies.length) - 1)] ?? 0;
  const tokens = { prompt: 0, completion: 0, total: 0 };
  let cost = 0;
  for (const r of results) {
    tokens.prompt += r.usage?.prompt_tokens ?? 0;
    tokens.completion += r.usage?.completion_tokens ?? 0;
    tokens.total += r.usage?.total_tokens ?? 0;
    cost += r.cost_usd ?? 0;
  }
  return {
    object: 'eval.report',
    prompt: o.prompt,
    version: o.version,
    template_sha256: template.sha256,
    model: template.model,
    set: `${o.set.name}@${o.set.version}`,
    set_sha256: o.set.sha256,
    threshold: o.set.threshold,
    config_file: o.config.file,
    started_at: startedAt.toISOString(),
    finished_at: new Date().toISOString(),
    cases: results,
    summary: {
      cases: results.length,
      passed,
      failed: results.length - passed - errored,
      errored,
      pass_rate: Math.round(passRate * 10_000) / 10_000,
      threshold: o.set.threshold,
      gate: passRate >= o.set.threshold ? 'pass' : 'fail',
      tokens,
      cost_usd: Math.round(cost * 1e9) / 1e9,
      latency_ms: { p50: pct(0.5), p95: pct(0.95), max: latencies.at(-1) ?? 0 },
    },
  };
}
