// TEMPORARY STUB (lead): helper-5 replaces this file with linear-time scanners.
import v8 from 'node:v8';

v8.setFlagsFromString('--enable-experimental-regexp-engine');

export interface Finding {
  detector: string;
  start: number;
  end: number;
}
export interface Detector {
  readonly name: string;
  scan(text: string, out: Finding[]): void;
}
export const BUILTIN_DETECTOR_NAMES = ['email', 'phone', 'card', 'iban', 'api_key', 'private_key'] as const;
export type BuiltinDetectorName = (typeof BUILTIN_DETECTOR_NAMES)[number];
export class RegexDetectorError extends Error {}

export function luhnValid(digits: string): boolean {
  let sum = 0;
  let double = false;
  for (let i = digits.length - 1; i >= 0; i--) {
    let d = digits.charCodeAt(i) - 48;
    if (double) d = d * 2 > 9 ? d * 2 - 9 : d * 2;
    sum += d;
    double = !double;
  }
  return sum % 10 === 0;
}
export function ibanValid(iban: string): boolean {
  const s = iban.replace(/\s/g, '').toUpperCase();
  const r = s.slice(4) + s.slice(0, 4);
  let m = 0;
  for (const ch of r) {
    const v = ch >= 'A' ? String(ch.charCodeAt(0) - 55) : ch;
    for (const c of v) m = (m * 10 + Number(c)) % 97;
  }
  return m === 1;
}
function re(name: string, pattern: RegExp, valid: (s: string) => boolean = () => true): Detector {
  return {
    name,
    scan(text, out) {
      pattern.lastIndex = 0;
      for (const m of text.matchAll(pattern)) if (valid(m[0])) out.push({ detector: name, start: m.index, end: m.index + m[0].length });
    },
  };
}
export const BUILTIN_DETECTORS: Readonly<Record<BuiltinDetectorName, Detector>> = {
  email: re('email', /[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63}){0,8}\.[A-Za-z]{2,24}/g),
  phone: re('phone', /\+?\(?\d{2,4}\)?[ .-]?\d{2,4}[ .-]?\d{3,4}(?:[ .-]?\d{2,4})?/g, (s) => {
    const d = s.replace(/\D/g, '');
    return d.length >= 8 && d.length <= 15 && !luhnValid(d);
  }),
  card: re('card', /\b[2-6]\d{3}(?:[ -]?\d{4}){2}[ -]?\d{1,7}\b/g, (s) => luhnValid(s.replace(/\D/g, ''))),
  iban: re('iban', /\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b/g, ibanValid),
  api_key: re('api_key', /(?:sk-(?:ant-|proj-)?[A-Za-z0-9_-]{20,200}|AKIA[0-9A-Z]{16}|gh[pousr]_[A-Za-z0-9]{36})/g),
  private_key: re('private_key', /-----BEGIN [A-Z ]{0,40}PRIVATE KEY-----[\s\S]{0,16384}?-----END [A-Z ]{0,40}PRIVATE KEY-----/g),
};
export function createRegexDetector(name: string, pattern: string, flags = ''): Detector {
  let compiled: RegExp;
  try {
    compiled = new RegExp(pattern, `g${flags}l`);
  } catch (err) {
    throw new RegexDetectorError(`invalid or non-linear pattern: ${(err as Error).message} (no backreferences or lookaround)`);
  }
  return re(name, compiled);
}
