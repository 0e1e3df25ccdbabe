// How upstream MCP tools are named behind /mcp: `<server>__<tool>`. The
// double underscore survives the canonical tool-name form (tool-name.ts folds
// "-", "." and spaces into "_" but keeps "__"), and server names may not
// contain "__" (config.ts), so the first "__" of a canonical name always ends
// the server's part. `github.create_issue` would fold to `github_create_issue`,
// which a server named `github_create` could also claim.
import { toolKey, type ToolKey } from '../policy/tool-name.js';

export const SERVER_SEPARATOR = '__';

/** The name an agent (and a lane's `allow`/`deny`/`require_approval`) uses for an upstream tool. */
export function namespacedTool(server: string, tool: string): string {
  return `${server}${SERVER_SEPARATOR}${tool}`;
}

/** The server a called name belongs to, by its canonical form; undefined when it names none. */
export function serverOf(key: ToolKey): string | undefined {
  const at = key.indexOf(SERVER_SEPARATOR);
  return at > 0 ? key.slice(0, at) : undefined;
}

export function namespacedKey(server: string, tool: string): ToolKey {
  return toolKey(namespacedTool(server, tool));
}
