// The count itself, shared by the event loop (tokens.ts) and the counting
// worker (token-worker.ts): it imports nothing, so loading it never loads
// tiktoken.
//
// A routing rule only asks whether a prompt reaches a number of tokens, so
// a count can stop once it has its answer: a long text is counted piece by
// piece, cut where a line starts with a letter or digit. No pretoken of
// tiktoken's split pattern spans such a cut (a newline run ends there, and
// a word or number never starts before a newline), so the pieces' counts add
// up to exactly the whole text's: a bounded count is exact below its bound.

// encode_ordinary: text is counted as text. `encode` throws on special-token
// text such as "<|endoftext|>", which any prompt may contain.
export type Encoder = { encode_ordinary(text: string): Uint32Array };

/** tiktoken's encoding for the models the gateway counts for. */
export const ENCODING = 'o200k_base';

/**
 * The tokens of `texts`, counted until they reach `limit`: exact below it,
 * some number at least `limit` otherwise (Infinity counts everything, each
 * text whole).
 */
export function countUpTo(encoder: Encoder, texts: readonly string[], limit: number): number {
  // ~1,000 tokens, a few ms: how far a count may run past its limit.
  const piece = 4096;
  const cut = /\n(?=[\p{L}\p{N}])/gu;
  let tokens = 0;
  for (const text of texts) {
    let start = 0;
    while (start < text.length && tokens < limit) {
      let end = text.length;
      if (limit !== Infinity && end - start > 2 * piece) {
        cut.lastIndex = start + piece;
        const found = cut.exec(text);
        if (found) end = found.index + 1;
      }
      tokens += encoder.encode_ordinary(start === 0 && end === text.length ? text : text.slice(start, end)).length;
      start = end;
    }
    if (tokens >= limit) break;
  }
  return tokens;
}
