// Detectors from patterns in policy files, run on RE2 (linear-regex.ts).
//
// Linear per search is not linear per scan: finding all matches of /x*y|x/
// in "xxxx…" costs O(n) per match, because the engine reads to the end of
// the input before it can prefer the shorter alternative, so O(n²) in all.
// So the scan runs the engine on windows of WINDOW chars and only takes
// matches that start in the first WINDOW - MAX_MATCH of them: no search
// reads more than WINDOW chars, which bounds any scan at O(n · WINDOW).
// Ordinary patterns cost the same as without windows. A match longer than
// MAX_MATCH may be cut at a window's edge, into pieces that still cover it.
//
// RE2 replaced V8's experimental linear engine (the `l` flag), which needed
// --enable-experimental-regexp-engine set for the whole process and, on
// Node 20, lacked `i` and `u`. Measured with bench/custom-regex.ts (100 KB
// of prose, 2 shared cores, loaded): a pattern with a required literal is
// 100-1000 times faster on RE2 (re2js skips text without it); one that must
// read every char costs 1.2-1.7 times V8's (27 ms against 22 ms for
// /[A-Z]{2,3}-[0-9]{6}/). Custom detectors are few and opt-in, so the
// library wins over a process-wide experimental V8 flag.
import type { Detector, Finding } from './types.js';
import { compileLinearRegex, type LinearRegex } from './linear-regex.js';

export class RegexDetectorError extends Error {
  override name = 'RegexDetectorError';
}

const MAX_MATCH = 128;
const WINDOW = 512;
const ALLOWED_FLAGS = 'imsu';

function compile(name: string, pattern: string, flags: string): LinearRegex {
  try {
    return compileLinearRegex(pattern, flags, { allowedFlags: ALLOWED_FLAGS });
  } catch (err) {
    throw new RegexDetectorError(`detector "${name}": ${(err as Error).message}`);
  }
}

const SPECIAL = '\\^$.|?*+()[]{}';

/**
 * A literal every match starts with ("EMP-" for /\bEMP-[0-9]{6}/), or "".
 * The scan jumps between its occurrences with indexOf, which is far faster
 * than the linear-time engine on text that holds none.
 */
function literalPrefix(source: string): string {
  // A top-level alternative may start with anything.
  let depth = 0;
  for (let i = 0; i < source.length; i++) {
    const ch = source[i];
    if (ch === '\\') i++;
    else if (ch === '[') {
      for (i++; i < source.length && source[i] !== ']'; i++) if (source[i] === '\\') i++;
    } else if (ch === '(') depth++;
    else if (ch === ')') depth--;
    else if (ch === '|' && depth === 0) return '';
  }
  let i = 0;
  // Zero-width assertions at the start constrain the context, not the first char.
  while (source.startsWith('\\b', i) || source.startsWith('\\B', i) || source[i] === '^') i += source[i] === '^' ? 1 : 2;
  let prefix = '';
  while (i < source.length) {
    let ch = source[i] ?? '';
    let length = 1;
    if (ch === '\\') {
      ch = source[i + 1] ?? '';
      length = 2;
      if (/[A-Za-z0-9]/.test(ch) || ch === '') break; // \d, \x41, \1…: not a plain char
    } else if (SPECIAL.includes(ch)) {
      break;
    }
    const after = source[i + length];
    if (after === '?' || after === '*' || after === '+' || after === '{') break; // optional or repeated
    prefix += ch;
    i += length;
  }
  return prefix;
}

/**
 * A detector for `pattern`, run on the linear-time engine. Flags may be any
 * of i, m, s and u. Throws RegexDetectorError, with what to change, when the
 * pattern is invalid, cannot run in linear time or matches the empty string.
 */
export function createRegexDetector(name: string, pattern: string, flags = ''): Detector {
  const re = compile(name, pattern, flags);
  // With `i` a match may start with the prefix in any case, which indexOf would miss.
  const prefix = flags.includes('i') ? '' : literalPrefix(pattern);
  if (re.test('')) {
    throw new RegexDetectorError(`detector "${name}": pattern matches the empty string; make it require at least one character (+ instead of *, no empty alternative)`);
  }
  return {
    name,
    scan(text: string, out: Finding[]): void {
      const n = text.length;
      for (let pos = 0; pos < n; ) {
        if (prefix !== '') {
          pos = text.indexOf(prefix, pos); // no match can start before it
          if (pos < 0) break;
        }
        // One char of context before the window keeps \b and (with m) ^ right at its
        // start; without m, ^ cannot match there since the window starts at index 1.
        const base = pos > 0 ? pos - 1 : 0;
        const stop = Math.min(n, base + WINDOW);
        const last = stop === n;
        const window = base === 0 && last ? text : text.slice(base, stop);
        const accept = last ? n : stop - MAX_MATCH; // matches must start before this
        let next = accept;
        const m = re.matcher(window);
        for (let from = pos - base; from <= window.length && m.find(from); ) {
          const start = base + m.start();
          if (start >= accept) {
            next = start;
            break;
          }
          const end = base + m.end();
          if (end === start) {
            from = m.start() + 1;
            continue;
          }
          out.push({ detector: name, start, end });
          next = Math.max(accept, end);
          from = m.end();
        }
        pos = next;
      }
    },
  };
}
