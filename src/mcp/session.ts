// The MCP server an agent talks to on /mcp: one per HTTP request, for one
// key in one lane. Stateless by design: every request builds its Server,
// answers and is gone, so any replica can answer any request and nothing
// about a "session" needs sharing (tool lists are cached per upstream, held
// calls and run budgets live in the shared stores). It serves the upstream
// servers' tools, resources and prompts under the lane's rules and hands
// every tool call to governToolCall before anything executes.
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import {
  CallToolRequestSchema,
  ErrorCode,
  GetPromptRequestSchema,
  ListPromptsRequestSchema,
  ListResourcesRequestSchema,
  ListResourceTemplatesRequestSchema,
  ListToolsRequestSchema,
  McpError,
  ReadResourceRequestSchema,
  type CallToolResult,
  type Prompt,
  type Resource,
} from '@modelcontextprotocol/sdk/types.js';
import type { CompiledConfig, KeyInfo } from '../config/compile.js';
import { toGatewayError } from '../errors.js';
import type { Services } from '../pipeline/context.js';
import type { CompiledLane } from '../policy/compile.js';
import { toolKey, type ToolKey } from '../policy/tool-name.js';
import type { Tracing } from '../telemetry/tracing.js';
import { APPROVAL_TOOL, APPROVAL_TOOL_NAME, callApprovalTool, governToolCall, heldResult, refusedResult } from './govern.js';
import { mcpServerReadable, mcpToolAllowed } from './lane.js';
import { namespacedKey, namespacedTool, serverOf } from './names.js';
import type { McpToolEntry, McpUpstreams } from './upstreams.js';

export interface McpCaller {
  key: KeyInfo;
  lane: CompiledLane;
  runId: string | undefined;
  requestId: string;
  headers: Record<string, string | string[] | undefined>;
  /** Aborted when the agent's HTTP request goes away. */
  signal: AbortSignal;
}

export interface McpSessionDeps {
  config: CompiledConfig;
  services: Services;
  upstreams: McpUpstreams;
  tracing: Tracing | undefined;
}

// Resources keep their upstream URI behind the server's name: `lanegate:<server>/<uri>`.
const RESOURCE_SCHEME = 'lanegate:';

export function createMcpServer(deps: McpSessionDeps, caller: McpCaller): Server {
  const { upstreams, services } = deps;
  const lane = caller.lane;
  const server = new Server(
    { name: 'lanegate', version: '1.0.0' },
    {
      capabilities: { tools: {}, resources: {}, prompts: {} },
      instructions: `Tools of the MCP servers behind Lanegate, named "<server>__<tool>", as lane ${lane.name} allows.`,
    },
  );

  /** Upstream servers whose resources and prompts the lane may read. */
  async function readableServers(): Promise<string[]> {
    const tools = await upstreams.tools();
    const byServer = new Map<string, ToolKey[]>(upstreams.servers().map((s) => [s, []]));
    for (const t of tools) byServer.get(t.server)?.push(t.key);
    return [...byServer].filter(([, keys]) => mcpServerReadable(lane, keys)).map(([s]) => s);
  }

  const signalOf = (extra: { signal: AbortSignal }) => AbortSignal.any([extra.signal, caller.signal]);

  server.setRequestHandler(ListToolsRequestSchema, async () => {
    const tools = await upstreams.tools();
    // The approval tool is every agent's: how it learns what became of a call that was held.
    return { tools: [...tools.filter((t) => mcpToolAllowed(lane, t.key)).map((t) => ({ ...t.definition, name: t.name })), APPROVAL_TOOL] };
  });

  server.setRequestHandler(CallToolRequestSchema, (request, extra) =>
    answerToolCall(deps, caller, request.params, extra.requestId, signalOf(extra)),
  );

  server.setRequestHandler(ListResourcesRequestSchema, async (_request, extra) => {
    const resources: Resource[] = [];
    for (const s of await readableServers()) {
      const listed = await upstreams.listResources(s, signalOf(extra)).catch((err: unknown) => {
        services.logger.warn({ mcpServer: s, err: String(err) }, 'MCP resources could not be listed; left out');
        return [];
      });
      for (const r of listed) resources.push({ ...r, uri: `${RESOURCE_SCHEME}${s}/${r.uri}` });
    }
    return { resources };
  });

  server.setRequestHandler(ListResourceTemplatesRequestSchema, () => ({ resourceTemplates: [] }));

  server.setRequestHandler(ReadResourceRequestSchema, async (request, extra) => {
    const uri = request.params.uri;
    const slash = uri.indexOf('/', RESOURCE_SCHEME.length);
    const s = uri.startsWith(RESOURCE_SCHEME) && slash > 0 ? uri.slice(RESOURCE_SCHEME.length, slash) : undefined;
    if (!s || !(await readableServers()).includes(s)) {
      throw new McpError(ErrorCode.InvalidParams, `Resource not found, or not readable in lane ${lane.name}. Use a URI from resources/list.`);
    }
    const upstreamUri = uri.slice(slash + 1);
    const result = await upstreams.readResource(s, upstreamUri, signalOf(extra)).catch(rethrowForAgent);
    return { ...result, contents: result.contents.map((c) => ({ ...c, uri: `${RESOURCE_SCHEME}${s}/${c.uri}` })) };
  });

  server.setRequestHandler(ListPromptsRequestSchema, async (_request, extra) => {
    const prompts: Prompt[] = [];
    for (const s of await readableServers()) {
      const listed = await upstreams.listPrompts(s, signalOf(extra)).catch((err: unknown) => {
        services.logger.warn({ mcpServer: s, err: String(err) }, 'MCP prompts could not be listed; left out');
        return [];
      });
      for (const p of listed) prompts.push({ ...p, name: namespacedTool(s, p.name) });
    }
    return { prompts };
  });

  server.setRequestHandler(GetPromptRequestSchema, async (request, extra) => {
    const name = request.params.name;
    const s = serverOf(toolKey(name));
    if (!s || !(await readableServers()).includes(s)) {
      throw new McpError(ErrorCode.InvalidParams, `Prompt "${name}" not found, or not readable in lane ${lane.name}. Use a name from prompts/list.`);
    }
    // The upstream's own name is what follows "<server>__" as the agent wrote it.
    const upstreamName = name.slice(namespacedKey(s, '').length);
    return upstreams.getPrompt(s, upstreamName, request.params.arguments, signalOf(extra)).catch(rethrowForAgent);
  });

  return server;
}

/**
 * One tools/call, for the SDK's handler and for the endpoint's direct path
 * (tool-call-rpc.ts) alike: the approval tool, or an upstream tool under the
 * lane's governance.
 */
export async function answerToolCall(
  deps: McpSessionDeps,
  caller: McpCaller,
  params: { name: string; arguments?: Record<string, unknown> },
  requestId: string | number,
  signal: AbortSignal,
): Promise<CallToolResult> {
  const { services, upstreams } = deps;
  const name = params.name;
  const key = toolKey(name);
  if (key === APPROVAL_TOOL_NAME) {
    return callApprovalTool({ services, config: deps.config, key: caller.key, args: params.arguments ?? {}, requestId: caller.requestId, signal });
  }
  const entry = await upstreams.findTool(key);
  if (!entry) {
    services.metrics.mcpToolCalls.labels('unknown', 'unknown', caller.lane.name, 'refused').inc();
    return errorResult(`Tool "${name}" is not served here (tools are named "<server>__<tool>"; see tools/list).`);
  }
  return callTool(deps, caller, entry, name, params.arguments ?? {}, String(requestId), signal);
}

async function callTool(deps: McpSessionDeps, caller: McpCaller, entry: McpToolEntry, name: string, args: Record<string, unknown>, callId: string, signal: AbortSignal): Promise<CallToolResult> {
  const { services, upstreams } = deps;
  const lane = caller.lane;
  const metrics = services.metrics;
  const span = deps.tracing?.startToolCall({ tool: entry.name, callId, server: entry.server, lane: lane.name, requestId: caller.requestId, headers: caller.headers });
  const count = (outcome: string, error?: string) => {
    metrics.mcpToolCalls.labels(entry.server, entry.tool, lane.name, outcome).inc();
    span?.end({ outcome, error });
  };
  const decision = await governToolCall({
    services,
    config: deps.config,
    key: caller.key,
    lane: lane.name,
    runId: caller.runId,
    server: entry.server,
    tool: entry.tool,
    name,
    args,
    requestId: caller.requestId,
  }).catch((err: unknown) => {
    count('error', toGatewayError(err).code);
    throw err;
  });
  if (decision.kind === 'refuse') {
    count('refused', decision.rule);
    return refusedResult(decision);
  }
  if (decision.kind === 'held') {
    metrics.mcpHeldCalls.labels(entry.server, entry.tool, lane.name).inc();
    count('held');
    return heldResult(decision);
  }
  const started = performance.now();
  let outcome: { result?: CallToolResult; error?: Error };
  try {
    outcome = { result: await upstreams.callTool(entry.server, entry.tool, decision.args, signal) };
  } catch (err) {
    outcome = { error: toGatewayError(err) };
  }
  const result = await decision.complete({ ...outcome, latencyMs: performance.now() - started });
  if (outcome.error) count(upstreamOutcome(toGatewayError(outcome.error).code), toGatewayError(outcome.error).code);
  else count(result.isError ? 'tool_error' : 'ok', result.isError ? 'tool_error' : undefined);
  return result;
}

function errorResult(text: string): CallToolResult {
  return { isError: true, content: [{ type: 'text', text }] };
}

function upstreamOutcome(code: string): string {
  if (code === 'upstream_timeout') return 'timeout';
  if (code === 'upstream_unavailable') return 'unavailable';
  if (code === 'client_disconnected') return 'cancelled';
  return 'error';
}

/** A gateway error's message is written for the caller; anything else stays in the logs. */
function rethrowForAgent(err: unknown): never {
  const e = toGatewayError(err);
  throw new McpError(ErrorCode.InternalError, e.code === 'internal_error' ? 'The gateway failed to read from the MCP server.' : e.message);
}
