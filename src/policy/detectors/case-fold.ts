// Rewrites a regular expression so it matches case-insensitively without
// the `i` flag: V8's linear-time engine (Node 20) rejects `i`. Each literal
// letter becomes a class of both cases ("a" -> "[aA]") and each class gains
// the other case of its letters and ASCII letter ranges. Escapes (\d, \x41,
// \p{Lu}, \k<name>) and group names are copied untouched; letters inside
// escapes and non-ASCII ranges are not folded.

/** Length of the escape sequence starting with the backslash at `i`. */
function escapeLength(pattern: string, i: number): number {
  const next = pattern[i + 1];
  const closing = (open: string, close: string): number => {
    if (pattern[i + 2] !== open) return 2;
    const end = pattern.indexOf(close, i + 3);
    return end < 0 ? 2 : end - i + 1;
  };
  switch (next) {
    case 'c':
      return /[A-Za-z]/.test(pattern[i + 2] ?? '') ? 3 : 2;
    case 'x':
      return /^[0-9A-Fa-f]{2}$/.test(pattern.slice(i + 2, i + 4)) ? 4 : 2;
    case 'u':
      if (pattern[i + 2] === '{') return closing('{', '}');
      return /^[0-9A-Fa-f]{4}$/.test(pattern.slice(i + 2, i + 6)) ? 6 : 2;
    case 'p':
    case 'P':
      return closing('{', '}');
    case 'k':
      return closing('<', '>');
    default:
      return 2;
  }
}

function otherCase(ch: string): string {
  const lower = ch.toLowerCase();
  const upper = ch.toUpperCase();
  if (lower !== ch && lower.length === 1) return lower;
  if (upper !== ch && upper.length === 1) return upper;
  return '';
}

/** Index after the "]" closing the class that opens at `i`, or -1. */
function classEnd(pattern: string, i: number): number {
  let j = pattern[i + 1] === '^' ? i + 2 : i + 1;
  while (j < pattern.length) {
    const ch = pattern[j];
    if (ch === ']') return j + 1;
    j += ch === '\\' ? escapeLength(pattern, j) : 1;
  }
  return -1;
}

/** The letters a range [from, to] lacks in the other case, as class items. */
function rangeOtherCase(from: number, to: number): string {
  let extra = '';
  for (const [lo, hi, shift] of [[0x61, 0x7a, -0x20], [0x41, 0x5a, 0x20]] as const) {
    const a = Math.max(from, lo);
    const b = Math.min(to, hi);
    if (a <= b) extra += `${String.fromCharCode(a + shift)}-${String.fromCharCode(b + shift)}`;
  }
  return extra;
}

function foldClass(cls: string): string {
  const negated = cls[1] === '^';
  let body = cls.slice(negated ? 2 : 1, -1);
  let extra = '';
  for (let j = 0; j < body.length; ) {
    if (body[j] === '\\') {
      j += escapeLength(body, j);
      continue;
    }
    const ch = body[j] ?? '';
    if (body[j + 1] === '-' && j + 2 < body.length && body[j + 2] !== '\\') {
      extra += rangeOtherCase(ch.charCodeAt(0), body.charCodeAt(j + 2));
      j += 3;
      continue;
    }
    extra += otherCase(ch);
    j++;
  }
  if (extra === '') return cls;
  // The additions go first; a leading "-" of the original is escaped so it cannot join them into a range.
  if (body.startsWith('-')) body = `\\${body}`;
  return `[${negated ? '^' : ''}${extra}${body}]`;
}

export function foldCase(pattern: string): string {
  let out = '';
  for (let i = 0; i < pattern.length; ) {
    const ch = pattern[i] ?? '';
    if (ch === '\\') {
      const length = escapeLength(pattern, i);
      out += pattern.slice(i, i + length);
      i += length;
    } else if (ch === '[') {
      const end = classEnd(pattern, i);
      if (end < 0) return out + pattern.slice(i); // unterminated: let RegExp report it
      out += foldClass(pattern.slice(i, end));
      i = end;
    } else if (pattern.startsWith('(?<', i) && pattern[i + 3] !== '=' && pattern[i + 3] !== '!') {
      const end = pattern.indexOf('>', i);
      const stop = end < 0 ? pattern.length : end + 1;
      out += pattern.slice(i, stop);
      i = stop;
    } else {
      const other = otherCase(ch);
      out += other === '' ? ch : `[${ch}${other}]`;
      i++;
    }
  }
  return out;
}
