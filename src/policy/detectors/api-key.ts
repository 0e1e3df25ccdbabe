// API keys and bearer tokens in their published formats: a known prefix,
// then a body of a fixed alphabet and length range that must end where the
// key does (no more [A-Za-z0-9_-] after it). A prefix glued to a longer word
// ("task-…", "xAKIA…") is not a key.
//
// One bounded regex (an alternation of literals) finds the prefixes; every
// body read is capped. A rejected candidate resumes at the end of its
// [A-Za-z0-9_-] run, since no key can start inside one; an accepted one at
// its end. So each char is read a bounded number of times.
import { DASH, SPACE, TAB, isAlnum, isDigit, isToken, isUpper, isWord, tokenEnd } from './chars.js';
import type { Detector, Finding } from './types.js';

interface KeyFormat {
  /** What may follow the prefix. */
  readonly body: (c: number) => boolean;
  readonly min: number;
  readonly max: number;
  /** Prefixes that are common word fragments ("risk-free…") also need a digit in the body. */
  readonly digit?: boolean;
}

const upperOrDigit = (c: number): boolean => isUpper(c) || isDigit(c);
const alnumOrDash = (c: number): boolean => isAlnum(c) || c === DASH;

const FORMATS = new Map<string, KeyFormat>();
function define(prefixes: readonly string[], format: KeyFormat): void {
  for (const prefix of prefixes) FORMATS.set(prefix, format);
}
// OpenAI (sk-, sk-proj-, sk-svcacct-…) and Anthropic (sk-ant-api03-…)
define(['sk-'], { body: isToken, min: 20, max: 512, digit: true });
define(['sk_live_', 'rk_live_', 'pk_live_'], { body: isAlnum, min: 16, max: 256 }); // Stripe
define(['AKIA', 'ASIA'], { body: upperOrDigit, min: 16, max: 16 }); // AWS access key ids
define(['ghp_', 'gho_', 'ghu_', 'ghs_', 'ghr_'], { body: isAlnum, min: 36, max: 251 }); // GitHub
define(['github_pat_'], { body: isWord, min: 22, max: 255 }); // GitHub fine-grained
define(['xoxa-', 'xoxb-', 'xoxp-', 'xoxr-', 'xoxs-'], { body: alnumOrDash, min: 10, max: 512 }); // Slack
define(['AIza'], { body: isToken, min: 35, max: 35 }); // Google API keys
define(['glpat-'], { body: isToken, min: 20, max: 255 }); // GitLab

const JWT = 'eyJ'; // base64url of '{"'
const JWT_MIN_SEGMENT = 8;
const JWT_MAX_SEGMENT = 8192;
const BEARER_MIN = 20;
const BEARER_MAX = 512;

const CANDIDATE = new RegExp([...FORMATS.keys(), JWT, '[Bb]earer[ \\t]'].join('|'), 'g');

/** Index after the run of `body` chars at `from`, reading at most max + 1 of them. */
function bodyEnd(text: string, from: number, body: (c: number) => boolean, max: number): number {
  const limit = from + max + 1;
  let i = from;
  while (i < limit && body(text.charCodeAt(i))) i++;
  return i;
}

function hasDigit(text: string, from: number, to: number): boolean {
  for (let i = from; i < to; i++) if (isDigit(text.charCodeAt(i))) return true;
  return false;
}

/** Token chars of RFC 6750's b64token: [A-Za-z0-9-._~+/] then "=" padding. */
function isBearerChar(c: number): boolean {
  return isToken(c) || c === 0x2e || c === 0x7e || c === 0x2b || c === 0x2f || c === 0x3d;
}

/** `header.payload.signature`, each base64url; header and payload are JSON objects. Its end, or -1. */
function jwtEnd(text: string, p: number): number {
  const e1 = bodyEnd(text, p, isToken, JWT_MAX_SEGMENT);
  if (e1 - p < JWT_MIN_SEGMENT || e1 - p > JWT_MAX_SEGMENT || text.charCodeAt(e1) !== 0x2e) return -1;
  if (!text.startsWith(JWT, e1 + 1)) return -1;
  const e2 = bodyEnd(text, e1 + 1, isToken, JWT_MAX_SEGMENT);
  if (e2 - e1 - 1 < JWT_MIN_SEGMENT || e2 - e1 - 1 > JWT_MAX_SEGMENT || text.charCodeAt(e2) !== 0x2e) return -1;
  const e3 = bodyEnd(text, e2 + 1, isToken, JWT_MAX_SEGMENT);
  return e3 - e2 - 1 > JWT_MAX_SEGMENT ? -1 : e3;
}

export function createApiKeyDetector(name = 'api_key'): Detector {
  return {
    name,
    scan(text: string, out: Finding[]): void {
      const re = CANDIDATE;
      re.lastIndex = 0;
      for (let m = re.exec(text); m !== null; m = re.exec(text)) {
        const p = m.index;
        const prefix = m[0];
        let resume = -1;
        if (!isToken(text.charCodeAt(p - 1))) {
          const format = FORMATS.get(prefix);
          if (format) {
            const from = p + prefix.length;
            const end = bodyEnd(text, from, format.body, format.max);
            const length = end - from;
            if (length >= format.min && length <= format.max && !isToken(text.charCodeAt(end)) && (!format.digit || hasDigit(text, from, end))) {
              out.push({ detector: name, start: p, end });
              resume = end;
            }
          } else if (prefix === JWT) {
            const end = jwtEnd(text, p);
            if (end > 0) {
              out.push({ detector: name, start: p, end });
              resume = end;
            }
          } else {
            // "Bearer <token>": report the token, not the scheme.
            let from = p + prefix.length;
            while (from < p + prefix.length + 8 && (text.charCodeAt(from) === SPACE || text.charCodeAt(from) === TAB)) from++;
            const end = bodyEnd(text, from, isBearerChar, BEARER_MAX);
            const length = end - from;
            if (length >= BEARER_MIN && length <= BEARER_MAX && hasDigit(text, from, end)) {
              out.push({ detector: name, start: from, end });
              resume = end;
            } else {
              resume = from; // the token may still hold a key of a known format
            }
          }
        }
        re.lastIndex = resume >= 0 ? resume : Math.max(p + 1, tokenEnd(text, p));
      }
    },
  };
}
