// How deeply a JSON text nests, found by a linear scan before JSON.parse
// recurses: request bodies (server/body.ts) and provider answers
// (providers/answer-json.ts) both refuse text nested past a limit, so no
// input can make a later recursive walk (redaction, canonical keys, the
// audit writer) run out of stack.

/** Bracket depth outside strings; stops counting once past the limit. */
export function jsonDepth(text: string, limit: number): number {
  return jsonDepthAndMembers(text, limit).depth;
}

/**
 * Bracket depth outside strings (counting stops once past the limit), and
 * how many object members the text holds (every `:` outside strings),
 * duplicate names included: a parsed value with fewer
 * members (`countMembers`) had a name twice, and JSON.parse kept only the
 * last one.
 */
export function jsonDepthAndMembers(text: string, limit: number): { depth: number; members: number } {
  let depth = 0;
  let max = 0;
  let members = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 92) i++; // backslash: skip the escaped char
      else if (c === 34) inString = false;
    } else if (c === 34) inString = true;
    else if (c === 58) members++;
    else if (c === 123 || c === 91) {
      if (++depth > max) {
        max = depth;
        if (max > limit) return { depth: max, members };
      }
    } else if (c === 125 || c === 93) depth--;
  }
  return { depth: max, members };
}

/** The object members of a parsed JSON value, all levels (its depth is bounded by the scan before the parse). */
export function countMembers(value: unknown): number {
  if (typeof value !== 'object' || value === null) return 0;
  let n = 0;
  if (Array.isArray(value)) {
    for (const item of value) n += countMembers(item);
    return n;
  }
  const o = value as Record<string, unknown>;
  for (const key in o) n += 1 + countMembers(o[key]);
  return n;
}
