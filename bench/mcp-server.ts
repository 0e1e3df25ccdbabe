// A fast MCP server over Streamable HTTP for `npm run bench:mcp` (and the MCP
// phase of `npm run bench`): one `echo` tool that answers at once. It runs as
// MCP servers commonly do when stateless: the SDK's own Server and transport,
// a fresh pair per POST, JSON answers (no SSE), so "direct" is what an agent
// pays without the gateway.
//
//   node mcp-server.js [--port 0]
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { CallToolRequestSchema, ListToolsRequestSchema } from '@modelcontextprotocol/sdk/types.js';

const { values } = parseArgs({ options: { port: { type: 'string', default: '0' } } });

const http = createServer((req, res) => {
  const server = new Server({ name: 'bench', version: '1.0.0' }, { capabilities: { tools: {} } });
  server.setRequestHandler(ListToolsRequestSchema, () => ({ tools: [{ name: 'echo', inputSchema: { type: 'object', properties: { n: { type: 'number' } } } }] }));
  server.setRequestHandler(CallToolRequestSchema, (r) => ({ content: [{ type: 'text', text: `echo ${JSON.stringify(r.params.arguments)}` }] }));
  const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
  res.on('close', () => void server.close());
  void server.connect(transport).then(() => transport.handleRequest(req, res));
});
http.keepAliveTimeout = 30_000;
http.listen(Number(values.port), '127.0.0.1', () => {
  const { port } = http.address() as AddressInfo;
  console.log(JSON.stringify({ msg: 'mcp server listening', port }));
});
