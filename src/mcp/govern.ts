// Governance of the tool calls agents make through /mcp: the same lane tool
// rules as the calls a model proposes (allow, deny, require_approval,
// recipients), plus path roots and files per call, detectors on the
// arguments (block, redact, escalate the lane) and on the result, run
// budgets, draft-first approvals and one audit record per call. The MCP
// endpoint (l-core: src/mcp/) parses the call and runs it; this module says
// whether and with which arguments, and what the agent gets back.
//
// For the endpoint:
//   1. Once per gateway, services.toolGateway (createToolGateway, built in
//      services.ts) gets the audit sink (GatewayState.audit, through
//      `attachToolGateway`) and the executor that runs a call on its upstream
//      server (bounded by the server's timeout). The executor is needed for
//      approved calls, which the gateway runs itself.
//   2. For every tools/call of an upstream tool, `governToolCall(input)`:
//      - refuse: return an MCP error result (isError) with the message;
//        never call the server.
//      - held: return a result saying the call awaits approval, with its id
//        (heldResult() builds it).
//      - execute: call the server with decision.args (redacted as the lane
//        says), then `await decision.complete({ result | error, latencyMs })`
//        exactly once and return what it gives: the result with the lane's
//        result detectors applied.
//   3. List APPROVAL_TOOL (`lanegate__approval`) in every tools/list and send
//      its calls to `callApprovalTool(input)`: it tells the agent whether a
//      held call is pending, rejected or expired, runs an approved one
//      exactly once (atomic claim in the approvals store) and returns its
//      stored result on every later call. GET /v1/approvals/{id} shows the
//      same record, result included (`execution.result`, JSON text).
import { randomBytes } from 'node:crypto';
import type { CallToolResult, Tool } from '@modelcontextprotocol/sdk/types.js';
import { AUDIT_RECORD_VERSION, type AuditToolCallRecord } from '../audit/schema.js';
import type { CompiledConfig, KeyInfo } from '../config/compile.js';
import type { Services } from '../pipeline/context.js';
import { newApprovalId, type Approval } from '../policy/approvals.js';
import type { CompiledLane } from '../policy/compile.js';
import { redactSlot, scanSlots, type TextSlot } from '../policy/scan.js';
import { argumentSlots, countFindings, judgeMcpToolCall, type ToolCallJudgement } from '../policy/tool-call.js';
import type { ToolKey } from '../policy/tool-name.js';
import { sha256Hex } from '../sha256.js';
import { toolRunLimits } from './tool-runs.js';
import type { ToolGateway, ToolGatewayParts } from './tool-gateway.js';

/** Runs one call on its upstream server; the endpoint's, bounded by the server's timeout. */
/** Gives the gateway's tool governance its audit sink and executor; later calls replace what they name. */
export function attachToolGateway(services: Services, parts: ToolGatewayParts): void {
  const a = services.toolGateway;
  if (parts.audit) a.audit = parts.audit;
  if (parts.execute) a.execute = parts.execute;
  if (parts.approvalTtlMs !== undefined) a.approvalTtlMs = parts.approvalTtlMs;
}

export interface ToolCallInput {
  services: Services;
  config: CompiledConfig;
  key: KeyInfo;
  /** The session's lane (the key's, or a stricter one it asked for). */
  lane: string;
  /** x-gateway-run-id, or the MCP session; without either the key's calls count as one run. */
  runId: string | undefined;
  server: string;
  /** The tool's name on its server. */
  tool: string;
  /** The namespaced name the agent called (`server__tool`). */
  name: string;
  args: Record<string, unknown>;
  requestId: string;
}

export interface ToolCallOutcome {
  result?: CallToolResult;
  error?: Error;
  latencyMs: number;
}

export type ToolCallDecision =
  | {
      kind: 'execute';
      /** The arguments to send: the lane's redactions applied. */
      args: Record<string, unknown>;
      /** Call once with the server's answer: applies result detectors, writes the audit record, releases run budgets. */
      complete(outcome: ToolCallOutcome): Promise<CallToolResult>;
    }
  | { kind: 'refuse'; rule: string; message: string }
  | { kind: 'held'; approvalId: string; message: string };

type Finding = AuditToolCallRecord['findings'][number];

export async function governToolCall(input: ToolCallInput): Promise<ToolCallDecision> {
  const { services, config, key } = input;
  const parts = services.toolGateway;
  const started = performance.now();
  const j = judgeMcpToolCall(config, input.lane, { name: input.name, args: input.args });
  const lane = j.lane;
  countPolicy(services, lane.name, j.findings);
  const record = recordBase(input, j);
  // Counted by the endpoint (lanegate_mcp_tool_calls_total, by outcome), not in
  // lanegate_tool_calls_total, which counts the calls models propose.

  if (j.verdict.outcome === 'refuse') {
    writeRecord(parts, record, { decision: 'refused', rule: j.verdict.rule, error: j.verdict.message, latency_ms: performance.now() - started });
    return { kind: 'refuse', rule: j.verdict.rule, message: j.verdict.message };
  }

  if (j.verdict.outcome === 'hold') {
    const id = newApprovalId();
    const now = new Date();
    await services.approvals.create({
      id,
      status: 'pending',
      created_at: now.toISOString(),
      decided_at: null,
      decided_by: null,
      reason: null,
      request_id: input.requestId,
      key_id: key.id,
      app: key.app,
      team: key.team,
      lane: lane.name,
      model: '',
      tool: input.name,
      tool_call_id: record.id,
      arguments: JSON.stringify(j.args),
      kind: 'mcp_tool_call',
      mcp: { server: input.server, tool: input.tool, canonical: j.canonical, run_id: input.runId ?? null, expires_at: new Date(now.getTime() + parts.approvalTtlMs).toISOString() },
    });
    writeRecord(parts, record, { decision: 'held', rule: 'require_approval', approval_id: id, latency_ms: performance.now() - started });
    return {
      kind: 'held',
      approvalId: id,
      message: `"${input.name}" needs a person's approval in lane ${lane.name}; it has not run. Call ${APPROVAL_TOOL_NAME} with {"approval_id": "${id}"} to learn the decision and, once approved, get its result.`,
    };
  }

  // "|" cannot occur in a key id, so no key's run id can name another key's run.
  const run = `${key.id}|${input.runId ?? '-'}`;
  const limits = toolRunLimits(config.raw.tool_runs, { keyId: key.id, lane: lane.name, name: input.name });
  if (limits) {
    const verdict = await parts.runs.acquire({ run, rate: `${key.id}|${j.canonical}`, limits, now: Date.now() });
    if (!verdict.ok) {
      const rule = `tool_runs.${verdict.limit}`;
      writeRecord(parts, record, { decision: 'refused', rule, error: verdict.message, latency_ms: performance.now() - started });
      return { kind: 'refuse', rule, message: verdict.message };
    }
  }
  let completed = false;
  return {
    kind: 'execute',
    args: j.args,
    async complete(outcome) {
      if (completed) throw new Error('complete() was called twice for one tool call');
      completed = true;
      try {
        return finishCall(services, parts, lane, record, outcome);
      } finally {
        if (limits) await parts.runs.release(run).catch((err: unknown) => services.logger.warn({ err: String(err) }, 'releasing a tool run slot failed'));
      }
    },
  };
}

/** The result the agent gets for a held call. */
export function heldResult(decision: { approvalId: string; message: string }): CallToolResult {
  return { content: [{ type: 'text', text: decision.message }], structuredContent: { status: 'pending_approval', approval_id: decision.approvalId } };
}

/** The result the agent gets for a refused call: an MCP error result naming the rule. */
export function refusedResult(decision: { rule: string; message: string }): CallToolResult {
  return { content: [{ type: 'text', text: `Refused by the gateway (rule: ${decision.rule}). ${decision.message}` }], isError: true };
}

/** Applies result detectors and writes the record of a call the gateway ran. */
function finishCall(services: Services, parts: ToolGateway, lane: CompiledLane, record: AuditToolCallRecord, outcome: ToolCallOutcome, approvalId?: string): CallToolResult {
  if (outcome.error || !outcome.result) {
    const message = outcome.error?.message ?? 'the server gave no result';
    writeRecord(parts, record, { decision: 'failed', approval_id: approvalId ?? null, error: message, is_error: true, latency_ms: outcome.latencyMs });
    return { content: [{ type: 'text', text: `Tool "${record.name}" failed: ${message}` }], isError: true };
  }
  const { result, findings, blockedBy } = guardResult(lane, structuredClone(outcome.result), record.name);
  countPolicy(services, lane.name, findings);
  const text = JSON.stringify(result);
  writeRecord(parts, record, {
    decision: 'executed',
    rule: blockedBy ? `detector:${blockedBy}` : null,
    approval_id: approvalId ?? null,
    findings: [...record.findings, ...findings],
    result: bodyText(lane, text, blockedBy !== undefined),
    result_sha256: sha256Hex(text),
    is_error: result.isError === true,
    latency_ms: outcome.latencyMs,
  });
  return result;
}

function resultSlots(result: CallToolResult): TextSlot[] {
  const slots: TextSlot[] = [];
  // The SDK's schema defaults content to [], but a result built by hand may lack it.
  (result.content ?? []).forEach((c, i) => {
    if (c.type === 'text') slots.push({ param: `content[${i}].text`, text: c.text, set: (t) => (c.text = t) });
    else if (c.type === 'resource' && 'text' in c.resource && typeof c.resource.text === 'string') {
      const r = c.resource as { text: string };
      slots.push({ param: `content[${i}].resource.text`, text: r.text, set: (t) => (r.text = t) });
    }
  });
  if (result.structuredContent) argumentSlots(result.structuredContent, 'structuredContent', slots);
  return slots;
}

/**
 * The lane's detectors over the result, before the agent sees it: `redact`
 * and `escalate` matches become placeholders (a result cannot move the call
 * to another lane after it ran, so escalation masks instead), and a `block`
 * match withholds the whole result.
 */
function guardResult(lane: CompiledLane, result: CallToolResult, name: string): { result: CallToolResult; findings: Finding[]; blockedBy?: string } {
  const scanned = scanSlots(resultSlots(result), lane.detectors);
  if (scanned.length === 0) return { result, findings: [] };
  const findings = countFindings(scanned, 'result');
  const blocked = scanned.flatMap((s) => s.findings).find((f) => f.rule.action === 'block');
  if (blocked) {
    return {
      result: { content: [{ type: 'text', text: `The result of "${name}" was withheld: lane ${lane.name} blocks what the ${blocked.detector} detector found in it.` }], isError: true },
      findings,
      blockedBy: blocked.detector,
    };
  }
  const placeholders = new Map<string, string>();
  const counters = new Map<string, number>();
  for (const s of scanned) {
    for (const f of s.findings) if (f.rule.action === 'escalate') f.rule = { ...f.rule, action: 'redact' };
    redactSlot(s.slot, s.findings, placeholders, counters);
  }
  return { result, findings };
}

/** Text kept in the record as the lane's audit.bodies allows; every detector of the lane masks in `redacted`. */
function bodyText(lane: CompiledLane, text: string, blocked: boolean): string | null {
  const mode = blocked ? 'hash' : lane.audit.bodies;
  if (mode === 'full') return text;
  if (mode === 'hash') return null;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return null;
  }
  const slots: TextSlot[] = [];
  if (typeof parsed === 'object' && parsed !== null) argumentSlots(parsed, '', slots);
  const masking = lane.detectors.map((d) => ({ detector: d.detector, action: 'redact' as const }));
  const placeholders = new Map<string, string>();
  const counters = new Map<string, number>();
  for (const s of scanSlots(slots, masking)) redactSlot(s.slot, s.findings, placeholders, counters);
  return JSON.stringify(parsed);
}

function countPolicy(services: Services, lane: string, findings: readonly Finding[]): void {
  for (const f of findings) services.metrics.policyActions.labels(lane, f.detector, f.action).inc(f.count);
}

function recordBase(input: Pick<ToolCallInput, 'requestId' | 'runId' | 'key' | 'server' | 'tool' | 'name'> & { args: unknown }, j: Pick<ToolCallJudgement, 'lane' | 'reasons' | 'canonical' | 'args' | 'findings' | 'blocked'>): AuditToolCallRecord {
  const text = JSON.stringify(j.args);
  return {
    v: AUDIT_RECORD_VERSION,
    kind: 'tool_call',
    id: `tc_${randomBytes(12).toString('hex')}`,
    time: new Date().toISOString(),
    request_id: input.requestId,
    run_id: input.runId ?? null,
    key_id: input.key.id,
    app: input.key.app,
    team: input.key.team,
    lane: { name: j.lane.name, reasons: j.reasons, bodies: j.lane.audit.bodies, retention_days: j.lane.audit.retention_days },
    server: input.server,
    tool: input.tool,
    name: input.name,
    canonical: j.canonical,
    decision: 'refused',
    rule: null,
    approval_id: null,
    findings: j.findings,
    // A blocked call's arguments hold what the lane blocks: the hash of what was sent, never the text.
    arguments: bodyText(j.lane, text, j.blocked),
    arguments_sha256: sha256Hex(j.blocked ? JSON.stringify(input.args) : text),
    result: null,
    result_sha256: null,
    is_error: false,
    error: null,
    latency_ms: null,
  };
}

function writeRecord(parts: ToolGateway, base: AuditToolCallRecord, fields: Partial<AuditToolCallRecord>): void {
  const audit = parts.audit;
  if (!audit?.enabled) return;
  audit.write({ ...base, time: new Date().toISOString(), ...fields });
}

// ---- The gateway's own tool: held calls' decisions and results ----

export const APPROVAL_TOOL_NAME = 'lanegate__approval';

/** Listed to every agent beside the upstream tools: how it learns what became of a held call. */
export const APPROVAL_TOOL: Tool = {
  name: APPROVAL_TOOL_NAME,
  title: 'Held tool call: decision and result',
  description:
    'A tool call that needs approval is held, not run, and its result names an approval id. Call this with that id: it says whether the call is still pending, was rejected or expired, and once approved runs it (exactly once) and returns its result, the same result on every later call.',
  inputSchema: {
    type: 'object',
    properties: { approval_id: { type: 'string', description: 'The id the held call returned (apr_...).' } },
    required: ['approval_id'],
  },
};

export interface ApprovalToolInput {
  services: Services;
  config: CompiledConfig;
  key: KeyInfo;
  args: Record<string, unknown>;
  requestId: string;
  /** Cancels the execution when the agent goes away; the executor's own timeout bounds it too. */
  signal?: AbortSignal;
}

function status(approval: Approval, state: string, text: string, isError = false): CallToolResult {
  return { content: [{ type: 'text', text }], structuredContent: { approval_id: approval.id, status: state }, ...(isError ? { isError } : {}) };
}

/** Answers a call of APPROVAL_TOOL; runs the held call when it is approved and nobody has yet. */
export async function callApprovalTool(input: ApprovalToolInput): Promise<CallToolResult> {
  const { services, config, key } = input;
  const parts = services.toolGateway;
  const id = input.args.approval_id;
  const notFound: CallToolResult = { content: [{ type: 'text', text: 'No such approval: pass the approval_id a held call returned.' }], isError: true };
  if (typeof id !== 'string') return notFound;
  // Another key's approval is "not found", so ids cannot be probed; and it is
  // checked before the claim, which another key must never take.
  const owned = await services.approvals.get(id);
  if (!owned || owned.key_id !== key.id) return notFound;
  const claim = await services.approvals.claim(id, new Date());
  const approval = claim.approval;
  if (!approval) return notFound;
  if (claim.ok) return runApproved(services, parts, config, approval, input);
  switch (claim.reason) {
    case 'not_mcp':
      return status(approval, approval.status, `Approval ${id} holds a model's tool call, which your app runs itself; read it with GET /v1/approvals/${id}.`, true);
    case 'pending':
      return status(approval, 'pending', `"${approval.tool}" is still waiting for a person's approval (until ${approval.mcp!.expires_at}). Call again later.`);
    case 'rejected':
      return status(approval, 'rejected', `"${approval.tool}" was rejected${approval.decided_by ? ` by ${approval.decided_by}` : ''}${approval.reason ? `: ${approval.reason}` : ''}. It did not run and will not.`, true);
    case 'expired':
      return status(approval, 'expired', `"${approval.tool}" was not approved before ${approval.mcp!.expires_at}. It did not run and will not; call the tool again to ask anew.`, true);
    case 'running':
      return status(approval, 'running', `"${approval.tool}" was approved and is running. Call again for its result.`);
    case 'done':
      return storedResult(approval);
    default:
      return notFound;
  }
}

function storedResult(approval: Approval): CallToolResult {
  const e = approval.execution!;
  if (e.result) return JSON.parse(e.result) as CallToolResult;
  return status(approval, 'failed', `"${approval.tool}" was approved and ran, but failed: ${e.error ?? 'no result'}.`, true);
}

async function runApproved(services: Services, parts: ToolGateway, config: CompiledConfig, approval: Approval, input: ApprovalToolInput): Promise<CallToolResult> {
  const mcp = approval.mcp!;
  const args = JSON.parse(approval.arguments) as Record<string, unknown>;
  const lane = config.policies.lanes.get(approval.lane);
  const j = { lane: lane!, reasons: [`held in ${approval.lane}`], canonical: mcp.canonical as ToolKey, args, findings: [], blocked: false };
  const record = recordBase({ requestId: input.requestId, runId: mcp.run_id ?? undefined, key: input.key, server: mcp.server, tool: mcp.tool, name: approval.tool, args }, j);
  const started = performance.now();
  let outcome: ToolCallOutcome;
  if (!lane || !parts.execute) {
    outcome = { error: new Error(lane ? 'the gateway has no MCP executor' : `lane ${approval.lane} no longer exists`), latencyMs: 0 };
  } else {
    try {
      outcome = { result: await parts.execute(mcp.server, mcp.tool, args, input.signal ?? new AbortController().signal), latencyMs: performance.now() - started };
    } catch (err) {
      outcome = { error: err instanceof Error ? err : new Error(String(err)), latencyMs: performance.now() - started };
    }
  }
  const result = lane ? finishCall(services, parts, lane, record, outcome, approval.id) : { content: [{ type: 'text' as const, text: outcome.error!.message }], isError: true };
  const failed = outcome.error !== undefined;
  await services.approvals.finish(approval.id, { result: failed ? null : JSON.stringify(result), error: failed ? outcome.error!.message : null });
  return failed ? status(approval, 'failed', `"${approval.tool}" was approved and ran, but failed: ${outcome.error!.message}.`, true) : result;
}
