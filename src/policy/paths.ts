// The path rule of a lane: every file path a tool call names in its path
// fields must stay inside one of the lane's roots, and there may be at most
// `max_files` of them. The check is on the strings, never the disk: the
// gateway does not see the MCP server's file system, so a path is resolved
// with node:path's POSIX rules against the first root and must land inside
// a root after "." and ".." are applied. Symlinks inside a root are the
// server's business; the rule stops a call from naming a place outside.
import path from 'node:path';
import type { LaneConfig } from './schema.js';

export type PathRule = NonNullable<LaneConfig['tools']['paths']>;

/** Longer values are refused, not checked: no real path is this long. */
const MAX_PATH_CHARS = 4096;
const MAX_DEPTH = 4;

interface Collected {
  paths: string[];
  problem?: string;
}

function collect(value: unknown, field: string, into: Collected, depth: number): void {
  if (into.problem || value === undefined || value === null) return;
  if (typeof value === 'string') {
    if (value.length > MAX_PATH_CHARS) into.problem = `its ${field} value is longer than the ${MAX_PATH_CHARS} characters the gateway checks`;
    else into.paths.push(value);
  } else if (Array.isArray(value)) {
    if (depth >= MAX_DEPTH) into.problem = `its ${field} value nests lists too deeply`;
    else for (const v of value) collect(v, field, into, depth + 1);
  } else if (typeof value === 'object') {
    // Edit lists ([{path, content}]) name their file in a path field.
    const o = value as Record<string, unknown>;
    if (typeof o.path !== 'string' && typeof o.file !== 'string') into.problem = `its ${field} value holds an object without a path or file field`;
    else if (depth >= MAX_DEPTH) into.problem = `its ${field} value nests too deeply`;
    else collect(o.path ?? o.file, field, into, depth + 1);
  } else {
    into.problem = `its ${field} value is a ${typeof value}, not a path`;
  }
}

/**
 * Where a path lands, or undefined when it cannot be judged safely: NUL
 * bytes, `file:` URLs and `~` are refused rather than guessed at.
 * Backslashes count as separators, so `..\\..\\etc` cannot slip past on a
 * Windows server.
 */
export function resolveToolPath(value: string, base: string): string | undefined {
  if (value === '' || value.includes('\0') || value.startsWith('~') || /^[a-z][a-z0-9+.-]*:/i.test(value)) return undefined;
  return path.posix.resolve(base, value.replaceAll('\\', '/'));
}

function inside(resolved: string, root: string): boolean {
  const r = path.posix.resolve(root);
  return resolved === r || resolved.startsWith(r === '/' ? '/' : `${r}/`);
}

/**
 * Why a call with these (parsed JSON) arguments breaks the lane's path rule,
 * or undefined if it keeps it. The rule names the root a path escapes from
 * only by the lane's own roots, never by echoing the path.
 */
export function pathViolation(rule: PathRule, args: unknown, names: { tool: string; lane: string }): string | undefined {
  if (!args || typeof args !== 'object' || Array.isArray(args)) return undefined;
  const found: Collected = { paths: [] };
  const fields = new Set(rule.fields.map((f) => f.toLowerCase()));
  for (const [field, value] of Object.entries(args)) if (fields.has(field.toLowerCase())) collect(value, field, found, 0);
  if (found.problem) return `"${names.tool}" cannot be checked against lane ${names.lane}'s path rule: ${found.problem}`;
  if (rule.max_files !== undefined && found.paths.length > rule.max_files) {
    return `"${names.tool}" names ${found.paths.length} files; lane ${names.lane} allows at most ${rule.max_files} per call`;
  }
  const base = rule.roots[0]!;
  for (const p of found.paths) {
    const resolved = resolveToolPath(p, base);
    if (resolved === undefined) return `"${names.tool}" names a path that is not a plain file path, which lane ${names.lane} cannot check`;
    if (!rule.roots.some((root) => inside(resolved, root))) {
      return `"${names.tool}" names a path outside the roots lane ${names.lane} allows (${rule.roots.join(', ')})`;
    }
  }
  return undefined;
}
