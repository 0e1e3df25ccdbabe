// Pieces of JSON text for lines written by hand (the audit request record,
// the access log): each is exactly what JSON.stringify writes for the value.

/** Characters JSON.stringify escapes: quote, backslash, controls, and surrogates (a lone one is escaped). */
const NEEDS_ESCAPE = /["\\\u0000-\u001f\ud800-\udfff]/; // eslint-disable-line no-control-regex -- controls are what it looks for

/** A string: quoted as it is when nothing in it needs escaping. */
export function str(s: string): string {
  return NEEDS_ESCAPE.test(s) ? JSON.stringify(s) : `"${s}"`;
}

export function strOrNull(s: string | null | undefined): string {
  return s === null || s === undefined ? 'null' : str(s);
}

/** A number as JSON.stringify prints it: non-finite numbers are null. */
export function num(n: number): string {
  return Number.isFinite(n) ? String(n) : 'null';
}

export function numOrNull(n: number | null | undefined): string {
  return n === null || n === undefined ? 'null' : num(n);
}

/** Typed as boolean, and never written as anything but true or false. */
export function bool(b: boolean): string {
  return b === true ? 'true' : 'false';
}
