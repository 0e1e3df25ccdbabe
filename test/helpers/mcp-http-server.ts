// A remote MCP server over Streamable HTTP on a free port, stateless (a fresh
// SDK server per request, as the SDK's stateless example does). It records
// the calls and the Authorization headers it saw; `die` destroys the socket
// of the request that is mid-call, and `down()` stops it answering at all.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { createTestMcpServer } from './mcp-tools.js';

export interface FakeMcpHttpServer {
  url: string;
  calls: Array<{ tool: string; args: Record<string, unknown> }>;
  authorizations: Array<string | undefined>;
  close(): Promise<void>;
}

export async function startFakeMcpHttpServer(): Promise<FakeMcpHttpServer> {
  const calls: FakeMcpHttpServer['calls'] = [];
  const authorizations: Array<string | undefined> = [];
  const http: Server = createServer((req, res) => {
    authorizations.push(req.headers.authorization);
    if (req.method !== 'POST') {
      res.writeHead(405).end();
      return;
    }
    const mcp = createTestMcpServer({ die: () => res.socket?.destroy(), onCall: (tool, args) => calls.push({ tool, args }) });
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined });
    res.on('close', () => {
      void transport.close();
      void mcp.close();
    });
    mcp
      .connect(transport)
      .then(() => transport.handleRequest(req, res))
      .catch(() => res.destroy());
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  const port = (http.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/mcp`,
    calls,
    authorizations,
    async close() {
      http.closeAllConnections();
      await new Promise<void>((resolve) => http.close(() => resolve()));
    },
  };
}
