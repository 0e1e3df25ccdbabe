// POST /mcp: the Model Context Protocol over Streamable HTTP, for agents
// holding a Lanegate key. Stateless (src/mcp/session.ts): every POST gets a
// JSON answer from a fresh MCP server (a single tools/call from the direct
// path, tool-call-rpc.ts), so requests of one agent may land on any replica.
// The session id issued on initialize holds no state: it names the agent's
// run when it sends no x-gateway-run-id (runOf). There is no
// server-to-client stream (GET) and no session to end (DELETE): both are
// 405, as the transport's specification allows. Errors before MCP (key, lane, body) are the API's
// JSON errors with their HTTP status.
import { randomBytes, randomUUID } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import type { HttpBindings } from '@hono/node-server';
import type { Context, Hono } from 'hono';
import { authenticateKey } from '../auth/keys.js';
import { GatewayError } from '../errors.js';
import type { McpCaller, McpSessionDeps } from '../mcp/session.js';
import { startingLane } from '../policy/lane.js';
import { bodyLimitsOf, readJsonBody } from './body.js';
import type { GatewayState } from './state.js';

type Env = { Bindings: HttpBindings };

export function mountMcp(app: Hono<Env>, state: GatewayState): void {
  app.post('/mcp', (c) => handleMcp(state, c));
  app.all('/mcp', () => {
    throw new GatewayError('method_not_allowed', 'Use POST for /mcp: the gateway runs MCP statelessly, without a server-to-client stream or sessions to end.');
  });
}

// The MCP SDK's server side (and the session built on it) loads with the
// first /mcp request: a gateway that serves no MCP traffic never pays its
// ~25 MB. One promise, shared by every request that arrives while it loads.
let serverSdk: Promise<ServerSdk> | undefined;
type ServerSdk = Awaited<ReturnType<typeof importServerSdk>>;

function importServerSdk() {
  return Promise.all([
    import('../mcp/session.js'),
    import('../mcp/tool-call-rpc.js'),
    import('@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js'),
    import('@modelcontextprotocol/sdk/types.js'),
  ]).then(([session, rpc, http, types]) => ({
    createMcpServer: session.createMcpServer,
    answerToolCallRequest: rpc.answerToolCallRequest,
    directToolCall: rpc.directToolCall,
    WebStandardStreamableHTTPServerTransport: http.WebStandardStreamableHTTPServerTransport,
    isInitializeRequest: types.isInitializeRequest,
  }));
}

function loadServerSdk(): Promise<ServerSdk> {
  serverSdk ??= importServerSdk();
  return serverSdk;
}

async function handleMcp(state: GatewayState, c: Context<Env>): Promise<Response> {
  const upstreams = state.services.mcp;
  if (!upstreams) throw new GatewayError('not_found', 'MCP is not enabled on this gateway.');
  const config = state.config();
  const incoming = c.env.incoming;
  const requestId = randomUUID();
  const key = authenticateKey(config, incoming.headers);
  const { lane } = startingLane(config.policies, key, incoming.headers['x-gateway-lane']);
  const parsedBody = await readJsonBody(incoming, bodyLimitsOf(config.server));

  const gone = new AbortController();
  const outgoing = c.env.outgoing;
  // 'close' also follows a finished answer: only a client that left before it counts as gone.
  outgoing.once('close', () => {
    if (!outgoing.writableFinished) gone.abort();
  });
  const deps = { config, services: state.services, upstreams, tracing: state.tracing };
  const caller = { key, lane, runId: runOf(incoming.headers), requestId, headers: incoming.headers, signal: gone.signal };
  const answerHeaders = { 'x-request-id': requestId, 'x-gateway-lane': lane.name };
  state.inflight++;
  try {
    const protocolVersion = incoming.headers['mcp-protocol-version'];
    const sdk = await loadServerSdk();
    const toolCall = sdk.directToolCall(parsedBody, { accept: incoming.headers.accept, protocolVersion: typeof protocolVersion === 'string' ? protocolVersion : undefined });
    if (toolCall) {
      const answer = await sdk.answerToolCallRequest(deps, caller, toolCall);
      return new Response(JSON.stringify(answer), { status: 200, headers: { 'content-type': 'application/json', ...answerHeaders } });
    }
    return await answerWithSdk(sdk, deps, caller, c.req.raw, parsedBody, answerHeaders);
  } finally {
    state.inflight--;
    state.onIdle();
  }
}

// The transport's specification: a session id is visible ASCII. Longer ones are no id of ours.
const SESSION_ID = /^[\x21-\x7e]{1,128}$/;

/**
 * The run a call counts against: x-gateway-run-id when the agent names one,
 * else its MCP session. The session id is issued on initialize and holds no
 * state (any replica accepts it, nothing to share or expire): it only names
 * the run, within the key's own runs (govern.ts prefixes the key), so an
 * agent that forges one reaches nothing but its own budgets, as with a run id.
 * Without either, the key's calls share one run.
 */
function runOf(headers: IncomingHttpHeaders): string | undefined {
  const explicit = headers['x-gateway-run-id'];
  if (typeof explicit === 'string' && explicit !== '') return explicit;
  const session = headers['mcp-session-id'];
  return typeof session === 'string' && SESSION_ID.test(session) ? session : undefined;
}

function newSessionId(): string {
  return `mcps_${randomBytes(16).toString('hex')}`;
}

async function answerWithSdk(sdk: ServerSdk, deps: McpSessionDeps, caller: McpCaller, request: Request, parsedBody: unknown, answerHeaders: Record<string, string>): Promise<Response> {
  const mcp = sdk.createMcpServer(deps, caller);
  const transport = new sdk.WebStandardStreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
  try {
    await mcp.connect(transport);
    const response = await transport.handleRequest(request, { parsedBody });
    for (const [name, value] of Object.entries(answerHeaders)) response.headers.set(name, value);
    if (response.status === 200 && sdk.isInitializeRequest(parsedBody)) response.headers.set('mcp-session-id', newSessionId());
    return response;
  } finally {
    // The JSON answer is complete once handleRequest returns: nothing of this server outlives the request.
    void mcp.close().catch(() => {});
  }
}
