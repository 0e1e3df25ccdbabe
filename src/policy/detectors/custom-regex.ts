// Detectors from patterns in policy files, run on V8's linear-time regexp
// engine (the `l` flag, behind --enable-experimental-regexp-engine). That
// engine refuses what it cannot run in linear time: backreferences,
// lookaround, and counted repeats above 16. On Node 20 it also refuses the
// `i` and `u` flags; `i` is emulated by rewriting the pattern (case-fold.ts).
//
// Linear per exec is not linear per scan: finding all matches of /x*y|x/ in
// "xxxx…" costs O(n) per match, because the engine reads to the end of the
// input before it can prefer the shorter alternative, so O(n²) in all
// (measured: 83 s for 40 KB). So the scan runs the engine on windows of
// WINDOW chars and only takes matches that start in the first
// WINDOW - MAX_MATCH of them: no exec reads more than WINDOW chars, which
// bounds any scan at O(n · WINDOW). Ordinary patterns cost the same as
// without windows (about 45 ns a char on this engine); that worst case is
// about 15 µs a char. A match longer than MAX_MATCH may be cut at a
// window's edge, into pieces that still cover it.
import v8 from 'node:v8';
import { foldCase } from './case-fold.js';
import type { Detector, Finding } from './types.js';

v8.setFlagsFromString('--enable-experimental-regexp-engine');

export class RegexDetectorError extends Error {
  override name = 'RegexDetectorError';
}

const MAX_MATCH = 128;
const WINDOW = 512;
const ALLOWED_FLAGS = 'imsu';

function engineSupports(flag: string): boolean {
  try {
    new RegExp('a', `${flag}l`);
    return true;
  } catch {
    return false;
  }
}
const NATIVE_I = engineSupports('i');
const NATIVE_U = engineSupports('u');

/**
 * Compiles a pattern for V8's linear-time engine, folding case by hand where
 * the engine lacks `i`. Shared by custom detectors and eval checks; errors say
 * what to change.
 */
export function compileLinearRegex(pattern: string, flags: string, options: { allowedFlags?: string; global?: boolean } = {}): RegExp {
  const allowed = options.allowedFlags ?? 'ims';
  for (const [i, flag] of [...flags].entries()) {
    if (!allowed.includes(flag)) throw new Error(`flag "${flag}" is not supported; use only ${[...allowed].join(', ').replace(/, (\w)$/, ' and $1')}`);
    if (flags.indexOf(flag) !== i) throw new Error(`flag "${flag}" is given twice`);
  }
  if (flags.includes('u') && !NATIVE_U) {
    throw new Error(`flag "u" is not supported by the linear-time regexp engine of Node ${process.versions.node}; drop it (\\p{…} and \\u{…} need it)`);
  }
  let source = pattern;
  let engineFlags = flags;
  if (flags.includes('i') && !NATIVE_I) {
    source = foldCase(pattern);
    engineFlags = flags.replace('i', '');
  }
  try {
    return new RegExp(source, `${options.global ? 'g' : ''}${engineFlags}l`);
  } catch (err) {
    const reason = err instanceof Error ? (err.message.split(': ').pop() ?? err.message) : String(err);
    if (reason.includes('linear time')) {
      // eslint-disable-next-line preserve-caught-error -- the message says what to change; V8's error adds nothing for the operator
      throw new Error(
        'the pattern cannot run in linear time; use no backreferences or lookaround ((?=, (?!, (?<=, (?<!, \\1, \\k<name>) and no counted repeat above 16 (write + instead of {1,64})',
      );
    }
    // eslint-disable-next-line preserve-caught-error -- the reason is V8's message, already in this one
    throw new Error(`invalid pattern: ${reason}`);
  }
}

function compile(name: string, pattern: string, flags: string): RegExp {
  try {
    return compileLinearRegex(pattern, flags, { allowedFlags: ALLOWED_FLAGS, global: true });
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
  const prefix = literalPrefix(re.source);
  if (new RegExp(re).test('')) {
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
        re.lastIndex = pos - base;
        for (let m = re.exec(window); m !== null; m = re.exec(window)) {
          const start = base + m.index;
          if (start >= accept) {
            next = start;
            break;
          }
          const end = start + m[0].length;
          if (end === start) {
            re.lastIndex = m.index + 1;
            continue;
          }
          out.push({ detector: name, start, end });
          next = Math.max(accept, end);
          re.lastIndex = m.index + m[0].length;
        }
        pos = next;
      }
    },
  };
}
