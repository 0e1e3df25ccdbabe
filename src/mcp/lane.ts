// What a lane lets an agent see and call behind /mcp. Upstream tools are
// catalogued by being listed by their server: each is a catalogue entry under
// its namespaced name (names.ts), so the lane's `allow` and `deny` decide
// alone, exactly as for a catalogued model tool. Resources and prompts are
// read-only: a lane may read a server's when it allows at least one of that
// server's tools (a server with no tools: when the lane allows every tool).
import type { CompiledLane } from '../policy/compile.js';
import type { ToolKey } from '../policy/tool-name.js';

export function mcpToolAllowed(lane: CompiledLane, key: ToolKey): boolean {
  const t = lane.tools;
  return !t.deny.has(key) && (t.allow === undefined || t.allow.has(key));
}

export function mcpServerReadable(lane: CompiledLane, toolKeys: readonly ToolKey[]): boolean {
  if (toolKeys.length === 0) return lane.tools.allow === undefined;
  return toolKeys.some((k) => mcpToolAllowed(lane, k));
}
