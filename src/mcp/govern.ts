// STUB (branch l-core): the governance of MCP tool calls is built on branch
// l-policy (argument rules, detectors, draft-first holds, run budgets, the
// audit record per call), which replaces this file when it merges. Until
// then it keeps the contract l-policy implements and enforces only the lane's
// allow/deny lists, so /mcp can be built and tested on its own.
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import type { CompiledConfig, KeyInfo } from '../config/compile.js';
import type { Services } from '../pipeline/context.js';
import { toolKey } from '../policy/tool-name.js';
import { mcpToolAllowed } from './lane.js';

export interface GovernToolCallInput {
  services: Services;
  config: CompiledConfig;
  key: KeyInfo;
  /** The lane the request runs in (the key's, or a stricter one it asked for). */
  lane: string;
  runId: string | undefined;
  server: string;
  /** The upstream's own name. */
  tool: string;
  /** The namespaced name the agent called. */
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
      /** Applies result detectors, writes the audit record, releases the run budget; returns what the agent gets. */
      complete(outcome: ToolCallOutcome): Promise<CallToolResult>;
    }
  | { kind: 'refuse'; rule: string; message: string }
  | { kind: 'held'; approvalId: string; message: string };

export function governToolCall(input: GovernToolCallInput): Promise<ToolCallDecision> {
  const lane = input.config.policies.lanes.get(input.lane)!;
  if (!mcpToolAllowed(lane, toolKey(input.name))) {
    return Promise.resolve({ kind: 'refuse', rule: 'denied', message: `Tool "${input.name}" is not allowed in lane ${lane.name}.` });
  }
  return Promise.resolve({
    kind: 'execute',
    args: input.args,
    complete(outcome) {
      if (outcome.result) return Promise.resolve(outcome.result);
      return Promise.resolve({ isError: true, content: [{ type: 'text', text: outcome.error?.message ?? 'The tool call failed.' }] });
    },
  });
}
