// How deeply a JSON text nests, found by a linear scan before JSON.parse
// recurses: request bodies (server/body.ts) and provider answers
// (providers/answer-json.ts) both refuse text nested past a limit, so no
// input can make a later recursive walk (redaction, canonical keys, the
// audit writer) run out of stack.

/** Bracket depth outside strings; stops counting once past the limit. */
export function jsonDepth(text: string, limit: number): number {
  let depth = 0;
  let max = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 92) i++; // backslash: skip the escaped char
      else if (c === 34) inString = false;
    } else if (c === 34) inString = true;
    else if (c === 123 || c === 91) {
      if (++depth > max) {
        max = depth;
        if (max > limit) return max;
      }
    } else if (c === 125 || c === 93) depth--;
  }
  return max;
}
