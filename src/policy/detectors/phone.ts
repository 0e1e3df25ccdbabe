// Phone numbers with 8 to 15 digits (E.164 allows at most 15), in two shapes:
//
// - Anchored: a leading "+" or an area code in parentheses, "+44 20 7946 0958",
//   "(415) 555-2671", "+44 (0)20 7946 0958". Groups may be joined by any single
//   space, dash or dot; the longest prefix of at most 15 digits is reported.
// - Plain: "415-555-2671", "415.555.2671", "020 7946 0958". One kind of
//   separator throughout, groups of 1-5 digits then 2-5 then a last one of
//   3-8, and the whole run must fit (a 16-digit run is a card, not a phone
//   followed by more digits). Unseparated runs count only with 10-11 digits
//   not starting with 1 (national numbers, not Unix timestamps or IDs).
//
// Not phones: ISO and European dates (2024-01-15, 15.01.2024), runs of years,
// IPv4 addresses and decimals (dot-joined numbers need exactly 3 groups), and
// 13-15 digit runs with a valid Luhn checksum, which the card detector owns.
//
// Anchored reads stop after 16 digits and plain reads resume where they
// stopped, so the input is read a bounded number of times.
import { DASH, DOT, LPAREN, PLUS, RPAREN, SPACE, isDigit, nextDigit } from './chars.js';
import { LUHN_DOUBLE } from './checksums.js';
import { digitRunEnd, numberMayEndAt, numberMayStartAt } from './numbers.js';
import type { Detector, Finding } from './types.js';

const MIN_DIGITS = 8;
const MAX_DIGITS = 15;

/** Where plainEnd's read stopped; the scan resumes there. */
let readEnd = 0;

function isSeparator(c: number): boolean {
  return c === SPACE || c === DASH || c === DOT;
}

/** A "+" or "(" at `s`: end of the longest phone number there, or -1. */
function anchoredEnd(text: string, s: number): number {
  const plus = text.charCodeAt(s) === PLUS;
  let i = plus ? s + 1 : s;
  let digits = 0;
  let paren = false;
  let best = -1;
  for (;;) {
    if (text.charCodeAt(i) === LPAREN) {
      if (paren) break;
      const inner = i + 1;
      const close = digitRunEnd(text, inner);
      // "(0)" trunk prefixes only after a country code; on its own an area code has 2-5 digits
      if (close - inner < (plus ? 1 : 2) || close - inner > 5 || text.charCodeAt(close) !== RPAREN) break;
      paren = true;
      digits += close - inner;
      i = close + 1;
      if (digits > MAX_DIGITS) break;
      if (digits >= MIN_DIGITS && numberMayEndAt(text, i)) best = i;
      const c = text.charCodeAt(i);
      if ((c === SPACE || c === DASH) && isDigit(text.charCodeAt(i + 1))) i++;
      else if (!isDigit(c)) break;
      continue;
    }
    const groupStart = i;
    while (isDigit(text.charCodeAt(i)) && digits + (i - groupStart) <= MAX_DIGITS) i++;
    if (i === groupStart) break;
    digits += i - groupStart;
    if (digits > MAX_DIGITS) break; // keep the best shorter prefix
    if (digits >= MIN_DIGITS && numberMayEndAt(text, i)) best = i;
    const c = text.charCodeAt(i);
    if (isSeparator(c) && isDigit(text.charCodeAt(i + 1))) i++;
    else if (!paren && c === SPACE && text.charCodeAt(i + 1) === LPAREN) i++;
    else if (!paren && c === LPAREN) continue;
    else break;
  }
  return best;
}

/** A digit at `s` with no "+" or "(" before it: end of the phone number there, or -1. */
function plainEnd(text: string, s: number): number {
  let i = s;
  let digits = 0;
  let groups = 0;
  let separator = -1;
  let first = 0;
  let previous = 0;
  let middleMin = Infinity;
  let middleMax = 0;
  let allYears = true;
  let even = 0; // Luhn sums, as in card.ts
  let odd = 0;
  for (;;) {
    const groupStart = i;
    for (let c = text.charCodeAt(i); isDigit(c); c = text.charCodeAt(++i)) {
      const d = c - 0x30;
      const nextEven = odd + d;
      odd = even + (LUHN_DOUBLE[d] ?? 0);
      even = nextEven;
    }
    const length = i - groupStart;
    digits += length;
    groups++;
    if (groups === 1) first = length;
    else if (groups > 2) {
      middleMin = Math.min(middleMin, previous);
      middleMax = Math.max(middleMax, previous);
    }
    previous = length;
    const century = text.charCodeAt(groupStart) * 256 + text.charCodeAt(groupStart + 1);
    allYears &&= length === 4 && (century === 0x3139 || century === 0x3230); // "19" or "20"
    const c = text.charCodeAt(i);
    if (isSeparator(c) && (separator < 0 || separator === c) && isDigit(text.charCodeAt(i + 1))) {
      separator = c;
      i++;
    } else {
      break;
    }
  }
  readEnd = i;
  if (digits < MIN_DIGITS || digits > MAX_DIGITS || !numberMayEndAt(text, i)) return -1;
  if (digits >= 13 && even % 10 === 0) return -1;
  if (groups === 1) return (digits === 10 || digits === 11) && text.charCodeAt(s) !== 0x31 ? i : -1;
  const last = previous;
  if (first > 5 || last < 3 || last > 8 || middleMin < 2 || middleMax > 5) return -1;
  if (separator === DOT && groups !== 3) return -1;
  if (groups === 3 && first === 2 && middleMax === 2 && last === 4) return -1; // 15.01.2024, 01-15-2024
  if (allYears) return -1;
  return i;
}

export function createPhoneDetector(name = 'phone'): Detector {
  return {
    name,
    scan(text: string, out: Finding[]): void {
      for (let i = nextDigit(text, 0); i >= 0; ) {
        const b = text.charCodeAt(i - 1);
        let end = -1;
        let start = i;
        if ((b === PLUS || b === LPAREN) && numberMayStartAt(text, i - 1)) {
          start = i - 1;
          end = anchoredEnd(text, start);
        }
        if (end < 0) {
          start = i;
          if (numberMayStartAt(text, i)) end = plainEnd(text, i);
          else readEnd = digitRunEnd(text, i);
        }
        if (end > 0) out.push({ detector: name, start, end });
        // Both reads stop at or after the end of the digit run at i, so the scan always moves on.
        i = nextDigit(text, end > 0 ? end : readEnd);
      }
    },
  };
}
