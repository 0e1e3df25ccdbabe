// PEM private keys (RFC 7468): "-----BEGIN <label>PRIVATE KEY-----" through
// the matching "-----END …PRIVATE KEY-----", for PKCS#1/#8 (RSA, EC, DSA,
// ENCRYPTED) and OpenSSH keys alike. With no END within 16 KB of the BEGIN,
// the finding runs to the end of that window: a truncated key still leaks.
//
// BEGINs and ENDs are found with indexOf. The next END position is cached
// and only searched again once the scan has passed it, and each finding
// resumes after its own end, so the input is read a bounded number of times.
import { SPACE, isUpper } from './chars.js';
import type { Detector, Finding } from './types.js';

const BEGIN = '-----BEGIN ';
const END = '-----END ';
const DASHES = '-----';
const SUFFIX = 'PRIVATE KEY';
const MAX_LABEL = 40;
const WINDOW = 16 * 1024;

/** Past the "-----" that closes a "[A-Z ]*PRIVATE KEY" label starting at `from`, or -1. */
function labelEnd(text: string, from: number): number {
  const limit = from + MAX_LABEL;
  let i = from;
  while (i < limit) {
    const c = text.charCodeAt(i);
    if (!isUpper(c) && c !== SPACE) break;
    i++;
  }
  if (i - from < SUFFIX.length || !text.startsWith(SUFFIX, i - SUFFIX.length) || !text.startsWith(DASHES, i)) return -1;
  return i + DASHES.length;
}

export function createPrivateKeyDetector(name = 'private_key'): Detector {
  return {
    name,
    scan(text: string, out: Finding[]): void {
      let at = text.indexOf(BEGIN);
      let nextEnd = -2; // -2: not searched yet; -1: there is none further on
      const findEnd = (from: number): number => {
        if (nextEnd !== -1 && nextEnd < from) nextEnd = text.indexOf(END, from);
        return nextEnd;
      };
      while (at >= 0) {
        const body = labelEnd(text, at + BEGIN.length);
        if (body < 0) {
          at = text.indexOf(BEGIN, at + 1);
          continue;
        }
        const limit = Math.min(text.length, at + WINDOW);
        let end = limit;
        for (let e = findEnd(body); e >= 0 && e < limit; e = findEnd(e + 1)) {
          const closed = labelEnd(text, e + END.length);
          if (closed > 0) {
            end = closed;
            break;
          }
        }
        out.push({ detector: name, start: at, end });
        at = text.indexOf(BEGIN, end);
      }
    },
  };
}
