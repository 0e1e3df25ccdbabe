// The shape of `mcp_servers:` in config/gateway.yaml: the MCP servers whose
// tools, resources and prompts the gateway serves behind /mcp. A remote
// server is reached by URL (Streamable HTTP) with the gateway's own
// credentials; a local one is a command the gateway spawns and supervises.
import { z } from 'zod';

// Server names prefix their tools as `<server>__<tool>` (names.ts). A server
// name may not itself hold "__" nor separators the canonical tool-name form
// folds into "_", or two servers could claim the same tool names.
const serverName = z
  .string()
  .regex(/^[a-z][a-z0-9]*(?:_[a-z0-9]+)*$/, 'expected a lowercase server name of letters and digits, single "_" between them (tools are named "<server>__<tool>")')
  .max(32)
  // `lanegate__approval` is the gateway's own tool (govern.ts).
  .refine((n) => n !== 'lanegate', 'the server name "lanegate" is the gateway\'s own');

const common = {
  /** One tool call (or list/read) may take this long before the agent gets a tool error. */
  timeout_ms: z.number().int().positive().max(600_000).default(30_000),
  /** Connecting (and, for a command, starting it) may take this long. */
  connect_timeout_ms: z.number().int().positive().max(120_000).default(10_000),
  /** A result (tool output, resource, prompt) larger than this, as JSON, is refused like a bad provider answer. */
  max_result_bytes: z.number().int().positive().max(64 * 1024 * 1024).default(1024 * 1024),
  description: z.string().default(''),
};

const remoteServer = z.strictObject({
  /** Streamable HTTP endpoint of the server. */
  url: z.url({ protocol: /^https?$/ }),
  /** Sent on every request to the server: the gateway's own credentials (`${ENV}` references), never the agent's key. */
  headers: z.record(z.string().regex(/^[A-Za-z0-9-]+$/), z.string()).default({}),
  ...common,
});

const localServer = z.strictObject({
  /** Spawned by the gateway and spoken to over stdio; restarted with backoff when it exits. */
  command: z.string().min(1),
  args: z.array(z.string()).default([]),
  /** Its environment: only these and a minimal PATH/HOME, so the gateway's secrets do not leak into it. */
  env: z.record(z.string(), z.string()).default({}),
  cwd: z.string().optional(),
  /** Restart backoff after the process exits: doubles from min to max. */
  restart_min_ms: z.number().int().positive().default(200),
  restart_max_ms: z.number().int().positive().default(30_000),
  ...common,
});

export const mcpServerSchema = z.union([remoteServer, localServer]);
export const mcpServersSchema = z.record(serverName, mcpServerSchema).default({});

export type McpServerConfig = z.infer<typeof mcpServerSchema>;
export type McpRemoteServerConfig = z.infer<typeof remoteServer>;
export type McpLocalServerConfig = z.infer<typeof localServer>;
export type McpServersConfig = z.infer<typeof mcpServersSchema>;

export function isLocalServer(c: McpServerConfig): c is McpLocalServerConfig {
  return 'command' in c;
}
