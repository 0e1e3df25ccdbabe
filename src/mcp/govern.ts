// STUB (branch l-core): the governance of MCP tool calls is built on branch
// l-policy (argument rules, detectors, draft-first holds, run budgets, the
// audit record per call), whose govern.ts replaces this file when it merges.
// Until then this keeps l-policy's exported API and enforces only the lane's
// allow/deny lists, so /mcp can be built and tested on its own: nothing is
// held, nothing audited, and the approval tool answers that approvals are
// not available.
import type { CallToolResult, Tool } from '@modelcontextprotocol/sdk/types.js';
import type { AuditSink } from '../audit/transport/writer.js';
import type { CompiledConfig, KeyInfo } from '../config/compile.js';
import type { Services } from '../pipeline/context.js';
import { toolKey } from '../policy/tool-name.js';
import { mcpToolAllowed } from './lane.js';

/** Runs one call on its upstream server; the endpoint's, bounded by the server's timeout. */
export type ToolExecutor = (server: string, tool: string, args: Record<string, unknown>, signal: AbortSignal) => Promise<CallToolResult>;

export interface ToolGatewayParts {
  audit?: AuditSink;
  execute?: ToolExecutor;
  approvalTtlMs?: number;
}

export function attachToolGateway(_services: Services, _parts: ToolGatewayParts): void {
  // The stub neither audits nor runs approved calls.
}

export interface ToolCallInput {
  services: Services;
  config: CompiledConfig;
  key: KeyInfo;
  /** The session's lane (the key's, or a stricter one it asked for). */
  lane: string;
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
      args: Record<string, unknown>;
      /** Call once with the server's answer: applies result detectors, writes the audit record, releases run budgets. */
      complete(outcome: ToolCallOutcome): Promise<CallToolResult>;
    }
  | { kind: 'refuse'; rule: string; message: string }
  | { kind: 'held'; approvalId: string; message: string };

export function governToolCall(input: ToolCallInput): Promise<ToolCallDecision> {
  const lane = input.config.policies.lanes.get(input.lane)!;
  if (!mcpToolAllowed(lane, toolKey(input.name))) {
    return Promise.resolve({ kind: 'refuse', rule: 'denied', message: `Tool "${input.name}" is not allowed in lane ${lane.name}.` });
  }
  return Promise.resolve({
    kind: 'execute',
    args: input.args,
    complete(outcome) {
      if (outcome.result) return Promise.resolve(outcome.result);
      return Promise.resolve({ isError: true, content: [{ type: 'text', text: `Tool "${input.name}" failed: ${outcome.error?.message ?? 'the server gave no result'}` }] });
    },
  });
}

export function heldResult(decision: { approvalId: string; message: string }): CallToolResult {
  return { content: [{ type: 'text', text: decision.message }], structuredContent: { status: 'pending_approval', approval_id: decision.approvalId } };
}

/** The result the agent gets for a refused call: an MCP error result naming the rule. */
export function refusedResult(decision: { rule: string; message: string }): CallToolResult {
  return { content: [{ type: 'text', text: `Refused by the gateway (rule: ${decision.rule}). ${decision.message}` }], isError: true };
}

export const APPROVAL_TOOL_NAME = 'lanegate__approval';

export const APPROVAL_TOOL: Tool = {
  name: APPROVAL_TOOL_NAME,
  title: 'Held tool call: decision and result',
  description: 'A tool call that needs approval is held, not run, and its result names an approval id. Call this with that id to learn its decision and result.',
  inputSchema: { type: 'object', properties: { approval_id: { type: 'string' } }, required: ['approval_id'] },
};

export interface ApprovalToolInput {
  services: Services;
  config: CompiledConfig;
  key: KeyInfo;
  args: Record<string, unknown>;
  requestId: string;
  signal?: AbortSignal;
}

export function callApprovalTool(_input: ApprovalToolInput): Promise<CallToolResult> {
  return Promise.resolve({ content: [{ type: 'text', text: 'No such approval: pass the approval_id a held call returned.' }], isError: true });
}
