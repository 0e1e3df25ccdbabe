// Lane policies and helpers shared by the MCP governance tests: the catalogue
// holds upstream MCP tools by their namespaced names (server__tool).
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import type { KeyInfo } from '../../src/config/compile.js';
import type { Gateway } from '../../src/gateway.js';
import { governToolCall, type ToolCallDecision } from '../../src/mcp/govern.js';
import type { ToolExecutor } from '../../src/mcp/tool-gateway.js';

export const MCP_POLICIES = `
default_lane: green
tools:
  files__read: {}
  files__write: {}
  mail__send: {}
  shell__run: {}
detectors:
  customer_id: { pattern: 'CUST-[0-9]{6}' }
lanes:
  green:
    rank: 10
    audit: { bodies: full }
    detectors:
      api_key: block
      customer_id: { action: escalate, lane: amber }
    tools:
      deny: [shell__run]
      require_approval: [mail__send]
      recipients: { fields: [to, cc], allow_domains: [example.com], max: 2 }
      paths: { fields: [path, paths], roots: [/srv/repo, /tmp/scratch], max_files: 2 }
  amber:
    rank: 20
    audit: { bodies: redacted }
    detectors:
      api_key: block
      email: redact
      phone: redact
    tools:
      allow: [files__read, mail__send]
      require_approval: [mail__send]
`;

export const WITH_MCP_POLICIES = `
policies: { dir: ./policies }
`;

export function keyOf(gateway: Gateway, id: string): KeyInfo {
  for (const { key } of gateway.config().keysByHash.values()) if (key.id === id) return key;
  throw new Error(`no key ${id}`);
}

/** An executor standing in for the upstream servers (the MCP endpoint's is l-core's): it counts calls and echoes them. */
export function countingExecutor(): { execute: ToolExecutor; calls: Array<{ server: string; tool: string; args: Record<string, unknown> }> } {
  const calls: Array<{ server: string; tool: string; args: Record<string, unknown> }> = [];
  return {
    calls,
    async execute(server, tool, args): Promise<CallToolResult> {
      calls.push({ server, tool, args });
      return { content: [{ type: 'text', text: `ran ${server}/${tool} #${calls.length}` }] };
    },
  };
}

export interface CallOptions {
  name: string;
  args: Record<string, unknown>;
  lane?: string;
  runId?: string;
  key?: string;
}

/** One tools/call as the MCP endpoint makes it: the namespaced name split at the first "__". */
export function govern(gateway: Gateway, o: CallOptions): Promise<ToolCallDecision> {
  const key = keyOf(gateway, o.key ?? 'alpha');
  const at = o.name.indexOf('__');
  return governToolCall({
    services: gateway.services,
    config: gateway.config(),
    key,
    lane: o.lane ?? key.lane,
    runId: o.runId,
    server: o.name.slice(0, at),
    tool: o.name.slice(at + 2),
    name: o.name,
    args: o.args,
    requestId: `req_${Math.random().toString(36).slice(2)}`,
  });
}

/** Runs an execute decision through the executor, as the endpoint does. */
export async function run(decision: ToolCallDecision, exec: ToolExecutor, server = 'files', tool = 'read', result?: CallToolResult): Promise<CallToolResult> {
  if (decision.kind !== 'execute') throw new Error(`expected execute, got ${decision.kind}: ${'message' in decision ? decision.message : ''}`);
  const answer = result ?? (await exec(server, tool, decision.args, new AbortController().signal));
  return decision.complete({ result: answer, latencyMs: 1 });
}
