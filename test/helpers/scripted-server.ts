// A node:http server on a free port whose answers a test computes, for
// pointing a real SDK (openai, @anthropic-ai/sdk) at bytes the gateway's
// translators produce: the SDK's own parsers then judge the shapes.
import { once } from 'node:events';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ScriptedReply {
  status?: number;
  headers?: Record<string, string>;
  /** A string is sent at once; an iterable is written piece by piece (SSE). */
  body: string | AsyncIterable<string>;
}

export interface ScriptedServer {
  url: string;
  requests: Array<{ method: string; path: string; body: unknown }>;
  close(): Promise<void>;
}

export async function startScriptedServer(answer: (req: IncomingMessage, body: unknown) => ScriptedReply | Promise<ScriptedReply>): Promise<ScriptedServer> {
  const requests: ScriptedServer['requests'] = [];
  const server = createServer((req, res) => {
    void (async () => {
      let raw = '';
      for await (const chunk of req) raw += chunk;
      const body: unknown = raw ? JSON.parse(raw) : undefined;
      requests.push({ method: req.method ?? '', path: req.url ?? '', body });
      const reply = await answer(req, body);
      const sse = typeof reply.body !== 'string';
      res.writeHead(reply.status ?? 200, { 'content-type': sse ? 'text/event-stream' : 'application/json', ...reply.headers });
      if (typeof reply.body === 'string') {
        res.end(reply.body);
        return;
      }
      for await (const piece of reply.body) res.write(piece);
      res.end();
    })();
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
