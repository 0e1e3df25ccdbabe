// Where a card or phone number may begin and end. A number glued to a word
// ("A4111…", "v1.2"), the fraction of a decimal ("3.14159…") or one segment
// of an identifier ("xoxb-123…-…") is not a number on its own.
import { COMMA, DASH, DOT, isAlnum, isDigit, isWord } from './chars.js';

export function numberMayStartAt(text: string, p: number): boolean {
  const b = text.charCodeAt(p - 1);
  if (isWord(b)) return false;
  if ((b === DOT || b === COMMA) && isDigit(text.charCodeAt(p - 2))) return false;
  if ((b === DASH || b === DOT) && isAlnum(text.charCodeAt(p - 2))) return false;
  return true;
}

export function numberMayEndAt(text: string, e: number): boolean {
  const a = text.charCodeAt(e);
  if (isWord(a)) return false;
  if ((a === DOT || a === COMMA) && isDigit(text.charCodeAt(e + 1))) return false;
  if (a === DASH && isAlnum(text.charCodeAt(e + 1))) return false;
  return true;
}

/** Index of the first non-digit at or after `from`. */
export function digitRunEnd(text: string, from: number): number {
  let i = from;
  while (isDigit(text.charCodeAt(i))) i++;
  return i;
}
