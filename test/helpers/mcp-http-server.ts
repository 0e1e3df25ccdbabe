// A remote MCP server over Streamable HTTP on a free port, stateless (a fresh
// SDK server per request, as the SDK's stateless example does). It records
// the calls and the Authorization headers it saw; `die` destroys the socket
// of the request that is mid-call; a call of `bogus` gets a result that is not valid MCP.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
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
    void answer(req, res);
  });
  async function answer(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const parts: Buffer[] = [];
    for await (const chunk of req) parts.push(chunk as Buffer);
    const body = JSON.parse(Buffer.concat(parts).toString('utf8')) as { id?: number; method?: string; params?: { name?: string } };
    // A misbehaving server: a result that is not a CallToolResult (content must be a list).
    if (body.method === 'tools/call' && body.params?.name === 'bogus') {
      calls.push({ tool: 'bogus', args: {} });
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ jsonrpc: '2.0', id: body.id, result: { content: 'not a list' } }));
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
      .then(() => transport.handleRequest(req, res, body))
      .catch(() => res.destroy());
  }
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
