// Payment card numbers: 13-19 digits starting with an IIN digit 2-6 (Mastercard,
// Visa, Amex, Diners, Discover, JCB, UnionPay…), written plain or in groups of
// 3+ digits joined by single spaces, dashes, dots or slashes (one kind per
// number), with a valid Luhn checksum. The span covers the separators. No-break
// spaces, Unicode dashes and digits are folded to these before (normalize.ts).
//
// From each candidate group the scanner reads at most 19 digits ahead,
// keeping both Luhn parities so every group end is checked in O(1), and
// reports the longest valid run. A rejected candidate resumes at the end of
// its first group, so the input is read a bounded number of times.
import { isDigit, isGroupSeparator, nextDigit } from './chars.js';
import { LUHN_DOUBLE } from './checksums.js';
import { digitRunEnd, numberMayEndAt, numberMayStartAt } from './numbers.js';
import type { Detector, Finding } from './types.js';

const MIN_DIGITS = 13;
const MAX_DIGITS = 19;
const MIN_GROUP = 3;

/** End of the longest Luhn-valid card number starting at digit `s`, or -1. */
function cardEnd(text: string, s: number): number {
  let i = s;
  let digits = 0;
  // Luhn sums of the digits read so far, with the last one undoubled (even)
  // or doubled (odd); appending a digit swaps their roles.
  let even = 0;
  let odd = 0;
  let separator = -1;
  let best = -1;
  for (;;) {
    const groupStart = i;
    for (let c = text.charCodeAt(i); isDigit(c); c = text.charCodeAt(++i)) {
      if (++digits > MAX_DIGITS) return best;
      const d = c - 0x30;
      const nextEven = odd + d;
      odd = even + (LUHN_DOUBLE[d] ?? 0);
      even = nextEven;
    }
    if (i - groupStart < MIN_GROUP) return best;
    if (digits >= MIN_DIGITS && even % 10 === 0 && numberMayEndAt(text, i)) best = i;
    const c = text.charCodeAt(i);
    if (isGroupSeparator(c) && (separator < 0 || separator === c) && isDigit(text.charCodeAt(i + 1))) {
      separator = c;
      i++;
    } else {
      return best;
    }
  }
}

export function createCardDetector(name = 'card'): Detector {
  return {
    name,
    scan(text: string, out: Finding[]): void {
      for (let i = nextDigit(text, 0); i >= 0; ) {
        let resume = digitRunEnd(text, i);
        const first = text.charCodeAt(i);
        if (first >= 0x32 && first <= 0x36 && numberMayStartAt(text, i)) {
          const end = cardEnd(text, i);
          if (end > 0) {
            out.push({ detector: name, start: i, end });
            resume = end;
          }
        }
        i = nextDigit(text, resume);
      }
    },
  };
}
