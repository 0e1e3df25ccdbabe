// Patterns from policy files and eval sets, written in JavaScript's regexp
// syntax and run on RE2 (re2js, a pure-JS port): matching is linear in the
// text whatever the pattern, so no pattern an operator writes can stall the
// gateway. RE2 refuses what it cannot run in linear time (backreferences,
// lookaround); we say so in words an operator can act on.
//
// The syntax is checked as JavaScript first (so errors read as before), then
// translated where RE2 reads the same text differently:
// - `.` without `s` excludes JavaScript's line terminators (\n, \r, U+2028,
//   U+2029), RE2's only \n;
// - `\s` and `\S` are JavaScript's Unicode whitespace, RE2's ASCII only;
// - `\b` in a class is a backspace; without `u`, `\p{…}` is the letter p;
// - \uXXXX and named groups are RE2JS.translateRegExp's.
// Two differences are left: with `m`, `^` and `$` see only \n as a line end
// (JavaScript also \r, U+2028 and U+2029), and `i` folds by Unicode's simple
// case folding (the Kelvin sign matches k), as JavaScript does only with `u`;
// detectors read NFKC text (normalize.ts), where neither character remains.
//
// Counted repeats stay bounded at 16, as on V8's linear engine before: a
// policy that loaded on an earlier version loads now, one refused is still
// refused, and a repeat's copies multiply the compiled program's size.
import { RE2JS } from 're2js';

const MAX_REPEAT = 16;
const LINE_ENDS = '\\n\\r\\u2028\\u2029';
const SPACES = '\\t\\n\\x0b\\f\\r \\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000\\ufeff';

const NOT_LINEAR =
  'the pattern cannot run in linear time; use no backreferences or lookaround ((?=, (?!, (?<=, (?<!, \\1, \\k<name>) and no counted repeat above 16 (write + instead of {1,64})';

/** A compiled pattern: `test` for checks, `matcher` for scans (see RE2JS). */
export type LinearRegex = RE2JS;

/** The pattern in RE2's syntax, with JavaScript's meaning; throws NOT_LINEAR for what RE2 cannot run. */
function toRe2(pattern: string, flags: string): string {
  const dotAll = flags.includes('s');
  const unicode = flags.includes('u');
  let out = '';
  let inClass = false;
  for (let i = 0; i < pattern.length; i++) {
    const ch = pattern[i]!;
    if (ch === '\\') {
      const next = pattern[i + 1] ?? '';
      i++;
      if ((next >= '1' && next <= '9') || (next === 'k' && pattern[i + 1] === '<')) throw new Error(NOT_LINEAR);
      if (next === 's') out += inClass ? SPACES : `[${SPACES}]`;
      else if (next === 'S' && !inClass) out += `[^${SPACES}]`;
      else if (next === 'b' && inClass) out += '\\x08';
      else if ((next === 'p' || next === 'P') && !unicode) out += next;
      else out += ch + next;
      continue;
    }
    if (inClass) {
      if (ch === ']') inClass = false;
      out += ch;
      continue;
    }
    if (ch === '[') {
      inClass = true;
      // "[]" and "[^]" are whole classes in JavaScript: their "]" closes them.
      const close = pattern[i + 1] === '^' ? (pattern[i + 2] === ']' ? 2 : 0) : pattern[i + 1] === ']' ? 1 : 0;
      out += pattern.slice(i, i + close + 1);
      if (close > 0) {
        inClass = false;
        i += close;
      }
      continue;
    }
    if (ch === '(' && pattern[i + 1] === '?') {
      const kind = pattern.slice(i + 2, i + 4);
      if (kind[0] === '=' || kind[0] === '!' || kind === '<=' || kind === '<!') throw new Error(NOT_LINEAR);
    }
    if (ch === '{') {
      const repeat = /^\{(\d+)(?:,(\d*))?\}/.exec(pattern.slice(i, i + 24));
      if (repeat && (Number(repeat[1]) > MAX_REPEAT || Number(repeat[2] || 0) > MAX_REPEAT)) throw new Error(NOT_LINEAR);
    }
    out += ch === '.' && !dotAll ? `[^${LINE_ENDS}]` : ch;
  }
  return RE2JS.translateRegExp(out);
}

/**
 * Compiles a pattern (JavaScript syntax and flags) for RE2. Shared by custom
 * detectors and eval checks; errors say what to change.
 */
export function compileLinearRegex(pattern: string, flags: string, options: { allowedFlags?: string } = {}): LinearRegex {
  const allowed = options.allowedFlags ?? 'ims';
  for (const [i, flag] of [...flags].entries()) {
    if (!allowed.includes(flag)) throw new Error(`flag "${flag}" is not supported; use only ${[...allowed].join(', ').replace(/, (\w)$/, ' and $1')}`);
    if (flags.indexOf(flag) !== i) throw new Error(`flag "${flag}" is given twice`);
  }
  try {
    // Only parsed, never run: the syntax, and its errors, are JavaScript's.
    new RegExp(pattern, flags);
  } catch (err) {
    const reason = err instanceof Error ? (err.message.split(': ').pop() ?? err.message) : String(err);
    // eslint-disable-next-line preserve-caught-error -- the reason is V8's message, already in this one
    throw new Error(`invalid pattern: ${reason}`);
  }
  const source = toRe2(pattern, flags);
  const re2Flags = (flags.includes('i') ? RE2JS.CASE_INSENSITIVE : 0) | (flags.includes('m') ? RE2JS.MULTILINE : 0) | (flags.includes('s') ? RE2JS.DOTALL : 0);
  try {
    return RE2JS.compile(source, re2Flags);
  } catch (err) {
    // JavaScript syntax RE2 lacks; its message quotes the part it refused.
    const reason = err instanceof Error ? err.message.replace(/^error parsing regexp: /, '') : String(err);
    // eslint-disable-next-line preserve-caught-error -- RE2's reason is in the message
    throw new Error(`invalid pattern for the linear-time engine (RE2): ${reason}`);
  }
}
