// Email addresses: local part [A-Za-z0-9._%+-]{1,64}, "@", then dot-separated
// domain labels [A-Za-z0-9-]+ ending in a 2-24 letter TLD.
//
// Anchored on each "@" (found by indexOf): the local part is read backwards
// at most 64 chars and never past the previous "@" or finding, the domain
// forwards at most 255 chars and never past the next "@" (neither part may
// contain one). So every char is read a bounded number of times.
import { DASH, DOT, isAlnum, isAlpha } from './chars.js';
import type { Detector, Finding } from './types.js';

const MAX_LOCAL = 64;
const MAX_DOMAIN = 255;

function isLocal(c: number): boolean {
  // . % + - and _
  return isAlnum(c) || c === DOT || c === 0x25 || c === 0x2b || c === DASH || c === 0x5f;
}

function isLabel(c: number): boolean {
  return isAlnum(c) || c === DASH;
}

/** End of the longest domain at `from` whose last label is a 2-24 letter TLD, or -1. */
function domainEnd(text: string, from: number): number {
  const limit = Math.min(text.length, from + MAX_DOMAIN);
  let i = from;
  let labels = 0;
  let end = -1;
  for (;;) {
    const start = i;
    let letters = true;
    while (i < limit) {
      const c = text.charCodeAt(i);
      if (!isLabel(c)) break;
      if (!isAlpha(c)) letters = false;
      i++;
    }
    const length = i - start;
    if (length === 0) break;
    labels++;
    if (labels >= 2 && letters && length >= 2 && length <= 24) end = i;
    // Another label follows only after a single dot (the dot ending a sentence does not count).
    if (i + 1 < limit && text.charCodeAt(i) === DOT && isLabel(text.charCodeAt(i + 1))) i++;
    else break;
  }
  return end;
}

export function createEmailDetector(name = 'email'): Detector {
  return {
    name,
    scan(text: string, out: Finding[]): void {
      let floor = 0; // findings never start before the end of the previous one
      let at = text.indexOf('@');
      while (at >= 0) {
        const min = Math.max(floor, at - MAX_LOCAL);
        let start = at;
        // A local part is a dot-atom: it stops at two dots in a row ("see...jo@x.io" is jo@x.io) and starts after any dot.
        while (start > min && isLocal(text.charCodeAt(start - 1)) && !(text.charCodeAt(start - 1) === DOT && text.charCodeAt(start - 2) === DOT)) start--;
        while (start < at && text.charCodeAt(start) === DOT) start++;
        const end = start < at ? domainEnd(text, at + 1) : -1;
        if (end < 0) {
          at = text.indexOf('@', at + 1);
          continue;
        }
        out.push({ detector: name, start, end });
        floor = end;
        at = text.indexOf('@', end);
      }
    },
  };
}
