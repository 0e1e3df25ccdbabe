// ASCII character classes for the hand-written scanners. They take a char
// code; reads past either end of a string give NaN, which no class contains,
// so scanners need no bounds checks of their own.

export const SPACE = 0x20;
export const TAB = 0x09;
export const PLUS = 0x2b;
export const COMMA = 0x2c;
export const DASH = 0x2d;
export const DOT = 0x2e;
export const SLASH = 0x2f;
export const LPAREN = 0x28;
export const RPAREN = 0x29;
export const UNDERSCORE = 0x5f;

export function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

export function isUpper(c: number): boolean {
  return c >= 0x41 && c <= 0x5a;
}

export function isAlpha(c: number): boolean {
  return (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);
}

export function isAlnum(c: number): boolean {
  return isAlpha(c) || isDigit(c);
}

/** [A-Za-z0-9_]: what glues a number or key to the word around it. */
export function isWord(c: number): boolean {
  return isAlnum(c) || c === UNDERSCORE;
}

/** [A-Za-z0-9_-]: base64url, and the alphabet of most API keys. */
export function isToken(c: number): boolean {
  return isWord(c) || c === DASH;
}

/** Index of the first char at or after `from` outside [A-Za-z0-9_-]. */
export function tokenEnd(text: string, from: number): number {
  let i = from;
  while (isToken(text.charCodeAt(i))) i++;
  return i;
}

/** Between the digit groups of a card number or IBAN: "4111 1111…", "4111-1111…", "4111.1111…", "4111/1111…". */
export function isGroupSeparator(c: number): boolean {
  return c === SPACE || c === DASH || c === DOT || c === SLASH;
}

const DIGIT = /[0-9]/g;

/** Index of the next ASCII digit at or after `from`, or -1. Native search: prose is mostly not digits. */
export function nextDigit(text: string, from: number): number {
  DIGIT.lastIndex = from;
  return DIGIT.test(text) ? DIGIT.lastIndex - 1 : -1;
}
