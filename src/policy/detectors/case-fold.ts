// Rewrites a regular expression so it matches case-insensitively without
// the `i` flag, which V8's linear-time engine (Node 20) rejects. Two chars
// match under `i` when they canonicalize alike (ECMA-262 Canonicalize,
// non-Unicode mode: toUpperCase, unless that maps a non-ASCII char to an
// ASCII one). So each literal char, \xHH or \uHHHH with case variants
// becomes a class of all of them ("a" -> "[aA]"), and each class gains the
// variants of its chars and ranges. Class escapes (\d, \w, \p{…}), group
// names and everything else are copied untouched.

/** Case-equivalence classes of UTF-16 code units, keyed by canonical form; built on first use. */
let classes: Map<number, number[]> | undefined;

function canonicalize(c: number): number {
  const upper = String.fromCharCode(c).toUpperCase();
  if (upper.length !== 1) return c;
  const u = upper.charCodeAt(0);
  return c >= 128 && u < 128 ? c : u;
}

function equivalents(c: number): readonly number[] {
  if (!classes) {
    const all = new Map<number, number[]>();
    for (let x = 0; x <= 0xffff; x++) {
      const k = canonicalize(x);
      const list = all.get(k);
      if (list) list.push(x);
      else all.set(k, [x]);
    }
    classes = new Map([...all].filter(([, list]) => list.length > 1));
  }
  return classes.get(canonicalize(c)) ?? [c];
}

function literal(c: number): string {
  const ch = String.fromCharCode(c);
  return /[A-Za-z0-9]/.test(ch) ? ch : `\\u${c.toString(16).padStart(4, '0')}`;
}

/** Code units as class items, consecutive ones as ranges. */
function classItems(codes: Iterable<number>): string {
  const sorted = [...new Set(codes)].sort((a, b) => a - b);
  let out = '';
  for (let i = 0; i < sorted.length; ) {
    let j = i;
    while (sorted[j + 1] === (sorted[j] ?? 0) + 1) j++;
    const lo = sorted[i] ?? 0;
    const hi = sorted[j] ?? 0;
    out += lo === hi ? literal(lo) : `${literal(lo)}-${literal(hi)}`;
    i = j + 1;
  }
  return out;
}

interface Atom {
  /** Chars of pattern source it spans. */
  length: number;
  /** The code unit it stands for, or -1 for class escapes and anything else that is not one char. */
  value: number;
}

const HEX2 = /^[0-9A-Fa-f]{2}$/;
const HEX4 = /^[0-9A-Fa-f]{4}$/;
const CONTROL: Record<string, number> = { f: 0x0c, n: 0x0a, r: 0x0d, t: 0x09, v: 0x0b };

/** The escape at `i` (a backslash). `inClass` decodes the escapes that mean one char only inside classes. */
function escapeAt(pattern: string, i: number, inClass: boolean): Atom {
  const next = pattern[i + 1] ?? '';
  const braced = (open: string, close: string): Atom => {
    const end = pattern[i + 2] === open ? pattern.indexOf(close, i + 3) : -1;
    return { length: end < 0 ? 2 : end - i + 1, value: -1 };
  };
  if (next === 'x' && HEX2.test(pattern.slice(i + 2, i + 4))) return { length: 4, value: parseInt(pattern.slice(i + 2, i + 4), 16) };
  if (next === 'u' && HEX4.test(pattern.slice(i + 2, i + 6))) return { length: 6, value: parseInt(pattern.slice(i + 2, i + 6), 16) };
  if (next === 'u' || next === 'p' || next === 'P') return braced('{', '}');
  if (next === 'k') return braced('<', '>');
  if (next === 'c' && /[A-Za-z]/.test(pattern[i + 2] ?? '')) return { length: 3, value: pattern.charCodeAt(i + 2) % 32 };
  if (!inClass || /[dDwWsS0-9]/.test(next)) return { length: 2, value: -1 };
  if (next === 'b') return { length: 2, value: 0x08 };
  return { length: 2, value: CONTROL[next] ?? next.charCodeAt(0) };
}

/** Index after the "]" closing the class that opens at `i`, or -1. */
function classEnd(pattern: string, i: number): number {
  let j = pattern[i + 1] === '^' ? i + 2 : i + 1;
  while (j < pattern.length) {
    if (pattern[j] === ']') return j + 1;
    j += pattern[j] === '\\' ? escapeAt(pattern, j, true).length : 1;
  }
  return -1;
}

function foldClass(cls: string): string {
  const negated = cls[1] === '^';
  let body = cls.slice(negated ? 2 : 1, -1);
  const atomAt = (j: number): Atom => (body[j] === '\\' ? escapeAt(body, j, true) : { length: 1, value: body.charCodeAt(j) });
  const extra = new Set<number>();
  const add = (lo: number, hi: number): void => {
    for (let c = lo; c <= hi; c++) for (const e of equivalents(c)) if (e < lo || e > hi) extra.add(e);
  };
  for (let j = 0; j < body.length; ) {
    const a = atomAt(j);
    const b = body[j + a.length] === '-' && j + a.length + 1 < body.length ? atomAt(j + a.length + 1) : undefined;
    if (a.value >= 0 && b && b.value >= a.value) {
      add(a.value, b.value);
      j += a.length + 1 + b.length;
    } else {
      if (a.value >= 0) add(a.value, a.value);
      j += a.length;
    }
  }
  if (extra.size === 0) return cls;
  // The additions go first; a leading "-" of the original is escaped so it cannot join them into a range.
  if (body.startsWith('-')) body = `\\${body}`;
  return `[${negated ? '^' : ''}${classItems(extra)}${body}]`;
}

export function foldCase(pattern: string): string {
  let out = '';
  for (let i = 0; i < pattern.length; ) {
    const ch = pattern[i] ?? '';
    let atom: Atom;
    if (ch === '[') {
      const end = classEnd(pattern, i);
      if (end < 0) return out + pattern.slice(i); // unterminated: let RegExp report it
      out += foldClass(pattern.slice(i, end));
      i = end;
      continue;
    }
    if (pattern.startsWith('(?<', i) && pattern[i + 3] !== '=' && pattern[i + 3] !== '!') {
      const end = pattern.indexOf('>', i);
      atom = { length: end < 0 ? pattern.length - i : end + 1 - i, value: -1 }; // a group name
    } else if (ch === '\\') {
      atom = escapeAt(pattern, i, false);
    } else {
      atom = { length: 1, value: pattern.charCodeAt(i) };
    }
    const variants = atom.value >= 0 ? equivalents(atom.value) : [];
    out += variants.length > 1 ? `[${classItems(variants)}]` : pattern.slice(i, i + atom.length);
    i += atom.length;
  }
  return out;
}
