// A local MCP server the gateway spawns over stdio (mcp_servers.<name>.command).
// `die` exits the process mid-call, so the gateway's supervisor restarts it.
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { createTestMcpServer } from './mcp-tools.js';

const server = createTestMcpServer({ die: () => process.exit(3) });
await server.connect(new StdioServerTransport());
