// POST /mcp: the Model Context Protocol over Streamable HTTP, for agents
// holding a Lanegate key. Stateless (src/mcp/session.ts): no session id is
// issued, every POST gets a fresh MCP server and a JSON answer, so requests
// of one agent may land on any replica. There is no server-to-client stream
// (GET) and no session to end (DELETE): both are 405, as the transport's
// specification allows. Errors before MCP (key, lane, body) are the API's
// JSON errors with their HTTP status.
import { randomUUID } from 'node:crypto';
import type { HttpBindings } from '@hono/node-server';
import type { Context, Hono } from 'hono';
import { authenticateKey } from '../auth/keys.js';
import { GatewayError } from '../errors.js';
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

// The MCP SDK's server side (~25 MB once loaded) and the session built on it
// load with the first /mcp request, not at start: most gateways never get one.
let serverSdk: Promise<{ createMcpServer: typeof import('../mcp/session.js').createMcpServer; WebStandardStreamableHTTPServerTransport: typeof import('@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js').WebStandardStreamableHTTPServerTransport }> | undefined;
function loadServerSdk() {
  serverSdk ??= Promise.all([import('../mcp/session.js'), import('@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js')]).then(([session, http]) => ({
    createMcpServer: session.createMcpServer,
    WebStandardStreamableHTTPServerTransport: http.WebStandardStreamableHTTPServerTransport,
  }));
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
  c.env.outgoing.once('close', () => gone.abort());
  const runId = incoming.headers['x-gateway-run-id'];
  const sdk = await loadServerSdk();
  const mcp = sdk.createMcpServer(
    { config, services: state.services, upstreams, tracing: state.tracing },
    { key, lane, runId: typeof runId === 'string' && runId !== '' ? runId : undefined, requestId, headers: incoming.headers, signal: gone.signal },
  );
  const transport = new sdk.WebStandardStreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
  state.inflight++;
  try {
    await mcp.connect(transport);
    const response = await transport.handleRequest(c.req.raw, { parsedBody });
    response.headers.set('x-request-id', requestId);
    response.headers.set('x-gateway-lane', lane.name);
    return response;
  } finally {
    // The JSON answer is complete once handleRequest returns: nothing of this server outlives the request.
    void mcp.close().catch(() => {});
    state.inflight--;
    state.onIdle();
  }
}
