// Check digits that turn "looks like a number" into "is one": Luhn for
// payment cards (ISO/IEC 7812-1 annex B), mod-97 for IBANs (ISO 13616 /
// ISO 7064 MOD 97-10). Both come in a one-shot form for callers and an
// incremental form the scanners extend one character at a time.
import { isDigit, isUpper } from './chars.js';

/** Luhn doubling of a digit: 2d, minus 9 when that has two digits. */
export const LUHN_DOUBLE = [0, 2, 4, 6, 8, 1, 3, 5, 7, 9] as const;

/** True for a string of 2+ ASCII digits whose Luhn checksum is 0. Anything else, separators included, is false. */
export function luhnValid(digits: string): boolean {
  if (digits.length < 2) return false;
  let sum = 0;
  let doubled = false;
  for (let i = digits.length - 1; i >= 0; i--) {
    const c = digits.charCodeAt(i);
    if (!isDigit(c)) return false;
    const d = c - 0x30;
    sum += doubled ? (LUHN_DOUBLE[d] ?? 0) : d;
    doubled = !doubled;
  }
  return sum % 10 === 0;
}

/** Folds one IBAN character (digit or letter, any case; A = 10 … Z = 35) into a running mod-97 remainder. */
export function mod97Step(r: number, c: number): number {
  if (isDigit(c)) return (r * 10 + (c - 0x30)) % 97;
  return (r * 100 + ((c | 0x20) - 0x57)) % 97;
}

/**
 * The IBAN remainder once the first four characters (country, check digits)
 * are moved behind the `rest` remainder, as the standard prescribes. `head` is
 * the numeric value of those four, from {@link ibanHead}.
 */
export function ibanFinish(rest: number, head: number): number {
  return (rest * 1_000_000 + head) % 97;
}

/** Numeric value of a country code and check digits: "GB82" -> 16 11 82 -> 161182. */
export function ibanHead(c0: number, c1: number, d0: number, d1: number): number {
  return ((c0 | 0x20) - 0x57) * 10_000 + ((c1 | 0x20) - 0x57) * 100 + (d0 - 0x30) * 10 + (d1 - 0x30);
}

/**
 * True when `iban`, taken in its compact uppercase form (spaces removed),
 * has an IBAN's shape (2 letters, 2 check digits, 11-30 letters or digits)
 * and its mod-97 remainder is 1. Country-specific lengths are the detector's
 * business, not this function's.
 */
export function ibanValid(iban: string): boolean {
  const s = iban.replaceAll(' ', '').toUpperCase();
  if (s.length < 15 || s.length > 34) return false;
  const c0 = s.charCodeAt(0);
  const c1 = s.charCodeAt(1);
  const d0 = s.charCodeAt(2);
  const d1 = s.charCodeAt(3);
  if (!isUpper(c0) || !isUpper(c1) || !isDigit(d0) || !isDigit(d1)) return false;
  let r = 0;
  for (let i = 4; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (!isDigit(c) && !isUpper(c)) return false;
    r = mod97Step(r, c);
  }
  return ibanFinish(r, ibanHead(c0, c1, d0, d1)) === 1;
}
