// IBANs: 2-letter country code, 2 check digits, 11-30 letters or digits,
// either compact ("DE89370400440532013000") or in groups of four joined by
// single spaces, dashes, dots or slashes, one kind throughout ("GB82 WEST
// 1234 5698 7654 32", "DE89-3704-…"), any case, mod-97 valid.
// Where the SWIFT IBAN registry fixes a country's length, only that length
// counts; mod-97 alone lets 1 in 97 random codes through.
//
// Candidates come from a bounded regex (two letters, two digits) and each
// reads at most 34 characters plus separators. A rejected candidate resumes
// at the end of its alphanumeric run, where the next one may begin.
import { isAlnum, isGroupSeparator } from './chars.js';
import { ibanFinish, ibanHead, mod97Step } from './checksums.js';
import type { Detector, Finding } from './types.js';

const MIN_LENGTH = 15;
const MAX_LENGTH = 34;

// SWIFT IBAN registry lengths. A country missing here falls back to 15-34.
const REGISTRY =
  'AD24 AE23 AL28 AT20 AZ28 BA20 BE16 BG22 BH22 BI27 BR29 BY28 CH21 CR22 CY28 CZ24 DE22 DJ27 DK18 DO28 EE20 EG29 ES24 ' +
  'FI18 FK18 FO18 FR27 GB22 GE22 GI23 GL18 GR27 GT28 HR21 HU28 IE22 IL23 IQ23 IS26 IT27 JO30 KW30 KZ20 LB28 LC32 LI21 ' +
  'LT20 LU20 LV21 LY25 MC27 MD24 ME22 MK19 MN20 MR27 MT31 MU30 NI28 NL18 NO15 OM23 PK24 PL28 PS29 PT25 QA29 RO24 RS22 ' +
  'RU33 SA24 SC31 SD18 SE24 SI19 SK24 SM27 SO23 ST25 SV28 TL23 TN24 TR26 UA29 VA22 VG24 XK20 YE30';

/** Registry length by country, indexed (first letter - A) * 26 + (second letter - A); 0 = unknown. */
const LENGTHS = new Uint8Array(26 * 26);
for (const entry of REGISTRY.split(' ')) {
  LENGTHS[(entry.charCodeAt(0) - 0x41) * 26 + (entry.charCodeAt(1) - 0x41)] = Number(entry.slice(2));
}

const CANDIDATE = /[A-Za-z]{2}[0-9]{2}/g;

function alnumEnd(text: string, from: number): number {
  let i = from;
  while (isAlnum(text.charCodeAt(i))) i++;
  return i;
}

/** End of the IBAN starting at `p` (which holds two letters and two digits), or -1. */
function ibanEnd(text: string, p: number): number {
  const c0 = text.charCodeAt(p) | 0x20;
  const c1 = text.charCodeAt(p + 1) | 0x20;
  const known = LENGTHS[(c0 - 0x61) * 26 + (c1 - 0x61)] ?? 0;
  const head = ibanHead(c0, c1, text.charCodeAt(p + 2), text.charCodeAt(p + 3));
  const min = known > 0 ? known : MIN_LENGTH;
  const max = known > 0 ? known : MAX_LENGTH;
  let r = 0;
  let length = 4;
  let i = p + 4;
  const separator = text.charCodeAt(i);
  if (!isGroupSeparator(separator)) {
    for (let c = text.charCodeAt(i); isAlnum(c) && length <= max; c = text.charCodeAt(++i)) {
      r = mod97Step(r, c);
      length++;
    }
    return length >= min && length <= max && ibanFinish(r, head) === 1 ? i : -1;
  }
  let best = -1;
  while (length < max && text.charCodeAt(i) === separator) {
    let j = i + 1;
    let group = r;
    for (let c = text.charCodeAt(j); isAlnum(c) && j - i <= 4; c = text.charCodeAt(++j)) group = mod97Step(group, c);
    const size = j - i - 1;
    if (size === 0 || isAlnum(text.charCodeAt(j)) || length + size > max) break; // not a group of this IBAN
    r = group;
    length += size;
    i = j;
    if (length >= min && ibanFinish(r, head) === 1) best = i;
    if (size < 4) break;
  }
  return best;
}

export function createIbanDetector(name = 'iban'): Detector {
  return {
    name,
    scan(text: string, out: Finding[]): void {
      const re = CANDIDATE;
      re.lastIndex = 0;
      while (re.test(text)) {
        const p = re.lastIndex - 4; // candidates are exactly 4 chars long
        const end = isAlnum(text.charCodeAt(p - 1)) ? -1 : ibanEnd(text, p);
        if (end > 0) out.push({ detector: name, start: p, end });
        re.lastIndex = end > 0 ? end : alnumEnd(text, p);
      }
    },
  };
}
