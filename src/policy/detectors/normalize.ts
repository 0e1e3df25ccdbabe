// The text detectors read, as a reader would see it rather than as it is
// encoded: "４１１１", "4111\u200b1111…" and "٤١١١" all spell 4111. Before
// any detector runs, each text is rewritten once:
//
// - default-ignorable code points (format characters such as U+200B zero
//   width space, U+200D joiner, U+00AD soft hyphen, bidi controls, variation
//   selectors, tag characters) are removed;
// - the rest is put in NFKC (full-width "４" and "＠" become "4" and "@",
//   no-break and other Unicode spaces become " ", ligatures split);
// - every Unicode decimal digit (\p{Nd}: Arabic-Indic, Devanagari, Thai…)
//   becomes its ASCII digit, every space separator (\p{Zs}) " ", and the
//   hyphens and dashes of DASHES "-".
//
// Detectors find spans in that text; redaction replaces spans of the text as
// sent. So the rewrite keeps, for each code unit it outputs, the range of the
// original it came from, and findings are mapped back through it.
//
// NFKC is applied per cluster (a base character and the combining marks and
// Hangul vowel and trailing jamo after it), which gives NFKC's result
// wherever composition stays within a cluster, as it does for every script's
// ordinary text, and lets each cluster map to its own original range.
// Classes of code points come from lazily built 256-entry pages, so the
// cost is a table lookup per character plus String#normalize per cluster
// that holds marks. Plain ASCII, which no step changes, is detected by one
// native regexp search and returned as it is.
import type { Finding } from './types.js';

/** A text as detectors read it, and the way back to the original's offsets. */
export interface NormalizedText {
  readonly text: string;
  /** True when `text` is the original itself (nothing to rewrite). */
  readonly identity: boolean;
  /** The original's [start, end) covering the normalised span [start, end). */
  toOriginal(start: number, end: number): { start: number; end: number };
}

/** Hyphens and dashes read as "-" (besides U+FE63 and U+FF0D, which NFKC already maps). */
const DASHES = new Set([0x2010, 0x2011, 0x2012, 0x2013, 0x2014, 0x2015, 0x2212, 0xfe58]);

/**
 * Marks per cluster, as in UAX #15's stream-safe format: reordering a long
 * run of marks costs String#normalize quadratic time, and no script needs
 * more than 30 on one base. Longer runs go on as clusters of their own.
 */
const MAX_CLUSTER_MARKS = 30;

const KEEP = 0;
const DROP = 1;
const MARK = 2;
const MAP = 3;

const IGNORABLE = /^[\p{Cf}\p{Default_Ignorable_Code_Point}]$/u;
const COMBINING = /^\p{M}$/u;
const DECIMAL = /^\p{Nd}$/u;
const SPACE_SEPARATOR = /^\p{Zs}$/u;

/** Class of every code point, by page of 256; a page is built the first time one of its code points is read. */
const pages: Array<Uint8Array | undefined> = [];
/** What each MAP code point becomes, by page like the classes. */
const pageReplacements: Array<string[] | undefined> = [];

/** Hangul vowel and trailing jamo compose with the syllable or leading jamo before them, like marks. */
function isJamoTail(cp: number): boolean {
  return (cp >= 0x1161 && cp <= 0x11ff) || (cp >= 0xd7b0 && cp <= 0xd7ff);
}

/** Decimal digits come in runs of ten from 0 to 9 (a Unicode stability guarantee), so the value is the offset in the run. */
function digitValue(cp: number): number {
  let start = cp;
  while (DECIMAL.test(String.fromCodePoint(start - 1))) start--;
  return (cp - start) % 10;
}

/** Folds digits, spaces and dashes and drops ignorables, in a string already in NFKC. */
function foldSlow(text: string): string {
  let out = '';
  for (const ch of text) {
    const cp = ch.codePointAt(0) ?? 0;
    if (IGNORABLE.test(ch)) continue;
    if (DECIMAL.test(ch)) out += String.fromCharCode(0x30 + digitValue(cp));
    else if (SPACE_SEPARATOR.test(ch)) out += ' ';
    else if (DASHES.has(cp)) out += '-';
    else out += ch;
  }
  return out;
}

function buildPage(page: number): Uint8Array {
  const classes = new Uint8Array(256);
  for (let k = 0; k < 256; k++) {
    const cp = page * 256 + k;
    if (cp < 0x80 || (cp >= 0xd800 && cp <= 0xdfff)) continue; // ASCII is stable; lone surrogates are kept
    const ch = String.fromCodePoint(cp);
    if (IGNORABLE.test(ch)) classes[k] = DROP;
    else if (COMBINING.test(ch) || isJamoTail(cp)) classes[k] = MARK;
    else {
      const folded = foldSlow(ch.normalize('NFKC'));
      if (folded !== ch) {
        classes[k] = MAP;
        (pageReplacements[page] ??= [])[k] = folded;
      }
    }
  }
  pages[page] = classes;
  return classes;
}

function classOf(cp: number): number {
  if (cp < 0x80) return KEEP;
  const page = cp >> 8;
  return (pages[page] ?? buildPage(page))[cp & 0xff] ?? KEEP;
}

/** Folds the NFKC form of a cluster with marks: the table has each code point's fold. */
function fold(text: string): string {
  let out = '';
  for (const ch of text) {
    const cp = ch.codePointAt(0) ?? 0;
    const c = classOf(cp);
    if (c === DROP) continue;
    out += c === MAP ? (pageReplacements[cp >> 8]?.[cp & 0xff] ?? ch) : ch;
  }
  return out;
}

function withoutIgnorables(text: string, from: number, to: number): string {
  let out = '';
  for (let i = from; i < to; ) {
    const cp = text.codePointAt(i) ?? 0;
    const next = i + (cp > 0xffff ? 2 : 1);
    if (classOf(cp) !== DROP) out += text.slice(i, next);
    i = next;
  }
  return out;
}

// eslint-disable-next-line no-control-regex -- the range starts at \x00 on purpose: everything above ASCII
const NON_ASCII = /[^\x00-\x7f]/;

class Identity implements NormalizedText {
  readonly identity = true;
  constructor(readonly text: string) {}
  toOriginal(start: number, end: number): { start: number; end: number } {
    return { start, end };
  }
}

class Rewritten implements NormalizedText {
  readonly identity = false;
  constructor(
    readonly text: string,
    private readonly starts: Int32Array,
    private readonly ends: Int32Array,
  ) {}
  toOriginal(start: number, end: number): { start: number; end: number } {
    if (end <= start) {
      const at = start < this.text.length ? (this.starts[start] ?? 0) : (this.ends[this.text.length - 1] ?? 0);
      return { start: at, end: at };
    }
    return { start: this.starts[start] ?? 0, end: this.ends[end - 1] ?? 0 };
  }
}

/** Output text plus, per output code unit, the original range it came from. */
class Builder {
  // Pieces joined once at the end: appending 1-char strings with += builds a rope that costs more than linear time to flatten.
  private parts: string[] = [];
  length = 0;
  starts: Int32Array;
  ends: Int32Array;

  constructor(capacity: number) {
    this.starts = new Int32Array(capacity);
    this.ends = new Int32Array(capacity);
  }

  private reserve(extra: number): void {
    if (this.length + extra <= this.starts.length) return;
    const size = Math.max(this.starts.length * 2, this.length + extra);
    const starts = new Int32Array(size);
    const ends = new Int32Array(size);
    starts.set(this.starts);
    ends.set(this.ends);
    this.starts = starts;
    this.ends = ends;
  }

  /** Original text[from, to) copied as it is. */
  copy(text: string, from: number, to: number): void {
    if (to <= from) return;
    this.reserve(to - from);
    for (let i = from; i < to; i++) {
      this.starts[this.length] = i;
      this.ends[this.length++] = i + 1;
    }
    this.parts.push(text.slice(from, to));
  }

  /** `value` stands for original [from, to). */
  put(value: string, from: number, to: number): void {
    if (value.length === 0) return;
    this.reserve(value.length);
    for (let k = 0; k < value.length; k++) {
      this.starts[this.length] = from;
      this.ends[this.length++] = to;
    }
    this.parts.push(value);
  }

  text(): string {
    return this.parts.join('');
  }
}

/** Linear in the text: each code point is classified once and each cluster normalised once. */
export function normalizeText(text: string): NormalizedText {
  if (!NON_ASCII.test(text)) return new Identity(text);
  const n = text.length;
  // Created at the first change: until then the output is the input, and text that needs no change costs no map.
  let out: Builder | undefined;
  const changed = (at: number): Builder => {
    if (!out) {
      out = new Builder(n + 16);
      out.copy(text, 0, at);
    }
    return out;
  };
  let i = 0;
  while (i < n) {
    // A run of chars that stay as they are; its last char joins the cluster after it if marks or ignorables follow.
    let j = i;
    let last = i;
    while (j < n) {
      const c = text.charCodeAt(j);
      if (c < 0x80) {
        last = j++;
        continue;
      }
      const cp = text.codePointAt(j) ?? 0;
      if (classOf(cp) !== KEEP) break;
      last = j;
      j += cp > 0xffff ? 2 : 1;
    }
    if (j < n && j > i) {
      const after = classOf(text.codePointAt(j) ?? 0);
      if (after === MARK || after === DROP) j = last;
    }
    out?.copy(text, i, j);
    i = j;
    if (i >= n) break;

    // A cluster: a base, then marks and ignorables (removed first, so they cannot keep a mark from its base).
    const cp = text.codePointAt(i) ?? 0;
    const cls = classOf(cp);
    const baseEnd = i + (cp > 0xffff ? 2 : 1);
    let k = baseEnd;
    let marks = cls === MARK ? 1 : 0;
    let dropped = false;
    for (;;) {
      const next = text.codePointAt(k);
      if (next === undefined || next < 0x80) break;
      const c = classOf(next);
      if (c === MARK) {
        if (++marks > MAX_CLUSTER_MARKS) break;
      } else if (c === DROP) dropped = true;
      else break;
      k += next > 0xffff ? 2 : 1;
    }
    if (marks > 0) {
      const original = text.slice(i, k);
      const value = fold((dropped ? withoutIgnorables(text, i, k) : original).normalize('NFKC'));
      if (out || value !== original) changed(i).put(value, i, k);
    } else if (cls === KEEP) {
      if (dropped) changed(i).copy(text, i, baseEnd);
      else out?.copy(text, i, baseEnd);
    } else if (cls === MAP) changed(i).put(pageReplacements[cp >> 8]?.[cp & 0xff] ?? '', i, baseEnd);
    else changed(i); // DROP
    i = k;
  }
  return out ? new Rewritten(out.text(), out.starts, out.ends) : new Identity(text);
}

/** Maps findings on `view.text` back onto the original text, in place. */
export function findingsToOriginal(view: NormalizedText, findings: Finding[], from = 0): void {
  if (view.identity) return;
  for (let i = from; i < findings.length; i++) {
    const f = findings[i]!;
    const span = view.toOriginal(f.start, f.end);
    f.start = span.start;
    f.end = span.end;
  }
}
