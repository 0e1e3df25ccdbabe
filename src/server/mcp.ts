// POST /mcp: the Model Context Protocol over Streamable HTTP, for agents
// holding a Lanegate key. Stateless (src/mcp/session.ts): no session id is
// issued, every POST gets a JSON answer from a fresh MCP server (a single
// tools/call from the direct path, tool-call-rpc.ts), so requests of one
// agent may land on any replica. There is no server-to-client stream
// (GET) and no session to end (DELETE): both are 405, as the transport's
// specification allows. Errors before MCP (key, lane, body) are the API's
// JSON errors with their HTTP status.
import { randomUUID } from 'node:crypto';
import type { HttpBindings } from '@hono/node-server';
import { WebStandardStreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js';
import type { Context, Hono } from 'hono';
import { authenticateKey } from '../auth/keys.js';
import { GatewayError } from '../errors.js';
import { createMcpServer, type McpCaller, type McpSessionDeps } from '../mcp/session.js';
import { answerToolCallRequest, directToolCall } from '../mcp/tool-call-rpc.js';
import { startingLane } from '../policy/lane.js';
import { checkContentType, parseJsonBody, readRawBody } from './body.js';
import type { GatewayState } from './state.js';

type Env = { Bindings: HttpBindings };

export function mountMcp(app: Hono<Env>, state: GatewayState): void {
  app.post('/mcp', (c) => handleMcp(state, c));
  app.all('/mcp', () => {
    throw new GatewayError('method_not_allowed', 'Use POST for /mcp: the gateway runs MCP statelessly, without a server-to-client stream or sessions to end.');
  });
}

async function handleMcp(state: GatewayState, c: Context<Env>): Promise<Response> {
  const upstreams = state.services.mcp;
  if (!upstreams) throw new GatewayError('not_found', 'MCP is not enabled on this gateway.');
  const config = state.config();
  const incoming = c.env.incoming;
  const requestId = randomUUID();
  const key = authenticateKey(config, incoming.headers);
  const { lane } = startingLane(config.policies, key, incoming.headers['x-gateway-lane']);
  checkContentType(incoming);
  const server = config.server;
  const raw = await readRawBody(incoming, {
    maxBytes: server.body_limit_bytes,
    timeoutMs: server.body_timeout_ms,
    maxDepth: server.max_json_depth,
    encodings: server.request_encodings,
  });
  const parsedBody = parseJsonBody(raw, server.max_json_depth);

  const gone = new AbortController();
  const outgoing = c.env.outgoing;
  // 'close' also follows a finished answer: only a client that left before it counts as gone.
  outgoing.once('close', () => {
    if (!outgoing.writableFinished) gone.abort();
  });
  const runId = incoming.headers['x-gateway-run-id'];
  const deps = { config, services: state.services, upstreams, tracing: state.tracing };
  const caller = { key, lane, runId: typeof runId === 'string' && runId !== '' ? runId : undefined, requestId, headers: incoming.headers, signal: gone.signal };
  const answerHeaders = { 'x-request-id': requestId, 'x-gateway-lane': lane.name };
  state.inflight++;
  try {
    const protocolVersion = incoming.headers['mcp-protocol-version'];
    const toolCall = directToolCall(parsedBody, { accept: incoming.headers.accept, protocolVersion: typeof protocolVersion === 'string' ? protocolVersion : undefined });
    if (toolCall) {
      const answer = await answerToolCallRequest(deps, caller, toolCall);
      return new Response(JSON.stringify(answer), { status: 200, headers: { 'content-type': 'application/json', ...answerHeaders } });
    }
    return await answerWithSdk(deps, caller, c.req.raw, parsedBody, answerHeaders);
  } finally {
    state.inflight--;
    state.onIdle();
  }
}

async function answerWithSdk(deps: McpSessionDeps, caller: McpCaller, request: Request, parsedBody: unknown, answerHeaders: Record<string, string>): Promise<Response> {
  const mcp = createMcpServer(deps, caller);
  const transport = new WebStandardStreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
  try {
    await mcp.connect(transport);
    const response = await transport.handleRequest(request, { parsedBody });
    for (const [name, value] of Object.entries(answerHeaders)) response.headers.set(name, value);
    return response;
  } finally {
    // The JSON answer is complete once handleRequest returns: nothing of this server outlives the request.
    void mcp.close().catch(() => {});
  }
}
