// The MCP server the tests put behind the gateway, written with the official
// SDK. Its tools script the faults: `slow` answers after `ms`, `die` takes
// the process or connection down mid-call, `huge` answers with `bytes` of
// text. Shared by the HTTP server and the stdio script.
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { z } from 'zod';

export interface ToolHooks {
  /** Called by `die`: end the connection (HTTP) or the process (stdio) mid-call. */
  die(): void;
  /** Every tool call, by tool name, as the server saw it. */
  onCall?(tool: string, args: Record<string, unknown>): void;
}

export function createTestMcpServer(hooks: ToolHooks): McpServer {
  const server = new McpServer({ name: 'test-mcp', version: '1.0.0' });
  const text = (t: string) => ({ content: [{ type: 'text' as const, text: t }] });
  server.registerTool('echo', { description: 'Echoes its text.', inputSchema: { text: z.string() } }, ({ text: t }) => {
    hooks.onCall?.('echo', { text: t });
    return text(t);
  });
  server.registerTool('send-email', { description: 'Sends mail (a side effect).', inputSchema: { to: z.string(), subject: z.string().optional(), body: z.string().optional() } }, (args) => {
    hooks.onCall?.('send-email', args);
    return text(`sent to ${args.to}`);
  });
  // A side effect the governance tests count executions of, beside send-email.
  server.registerTool('write_file', { description: 'Writes a file.', inputSchema: { path: z.string(), content: z.string() } }, (args) => {
    hooks.onCall?.('write_file', args);
    return text(`wrote ${args.content.length} bytes to ${args.path}`);
  });
  // Sensitive data that only the server's answer holds, for result detectors.
  server.registerTool('card', { description: 'The card on file.' }, () => {
    hooks.onCall?.('card', {});
    return text('Card on file: 4111 1111 1111 1111, expires 12/29');
  });
  server.registerTool('whoami', { description: 'The process id of the server.' }, () => {
    hooks.onCall?.('whoami', {});
    return text(String(process.pid));
  });
  server.registerTool('slow', { description: 'Answers after ms.', inputSchema: { ms: z.number() } }, async ({ ms }) => {
    hooks.onCall?.('slow', { ms });
    // Unref'd: a test that gave up on the answer must not wait for it to exit.
    await new Promise((r) => setTimeout(r, ms).unref());
    return text(`slept ${ms}`);
  });
  server.registerTool('die', { description: 'Goes away mid-call.' }, async () => {
    hooks.onCall?.('die', {});
    hooks.die();
    await new Promise((r) => setTimeout(r, 60_000).unref());
    return text('unreachable');
  });
  server.registerTool('huge', { description: 'Answers with bytes of text.', inputSchema: { bytes: z.number() } }, ({ bytes }) => {
    hooks.onCall?.('huge', { bytes });
    return text('x'.repeat(bytes));
  });
  // Listed here; the HTTP server answers its calls itself with an invalid result.
  server.registerTool('bogus', { description: 'Answers with an invalid result (over HTTP).' }, () => text('valid'));
  server.registerResource('readme', 'file:///readme.md', { description: 'The readme.', mimeType: 'text/markdown' }, (uri) => ({
    contents: [{ uri: uri.href, mimeType: 'text/markdown', text: '# Test server readme' }],
  }));
  server.registerPrompt('greet', { description: 'A greeting.', argsSchema: { name: z.string() } }, ({ name }) => ({
    messages: [{ role: 'user', content: { type: 'text', text: `Say hello to ${name}.` } }],
  }));
  return server;
}
