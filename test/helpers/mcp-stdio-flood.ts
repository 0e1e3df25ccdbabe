// A misbehaving local MCP server for the gateway to spawn over stdio: it
// initializes and lists its tools like any other, but `flood` answers by
// writing to stdout without end and never a newline, so a reader that waits
// for the end of the line holds ever more of it. `whoami` answers normally,
// with the process id (a restarted server has another).
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';

const server = new McpServer({ name: 'flood', version: '1.0.0' });
server.registerTool('whoami', { description: 'The process id of the server.' }, () => ({ content: [{ type: 'text', text: String(process.pid) }] }));
server.registerTool('flood', { description: 'Writes to stdout forever, never a newline.' }, async () => {
  const chunk = '"'.padEnd(64 * 1024, 'x');
  const write = () => {
    if (process.stdout.write(chunk)) setImmediate(write);
    else process.stdout.once('drain', write);
  };
  write();
  await new Promise(() => {});
  return { content: [] };
});
await server.connect(new StdioServerTransport());
