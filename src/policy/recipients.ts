// The recipient rule of a lane: every address a tool call names in its
// recipient fields must be allowed, and there may be at most `max` of them.
// Values are parsed as RFC 5322 address lists (with RFC 6532's UTF-8) by the
// email-addresses package, not split by hand: a display name may hold an
// "@" ("x@example.com" <y@evil.com> goes to y@evil.com), a quoted local part
// may hold commas, comments may sit anywhere, and a group (team: a@x, b@y;)
// names each member. A value that does not parse as addresses is refused,
// never passed: a hand-rolled split that lets "a@evil.com@example.com"
// through is what this replaces.
//
// Domains are compared in ASCII (IDNA, via url.domainToASCII) and lower case,
// on both sides: the policy's allow_domains and allow_addresses are put in
// that form once at load (schema.ts), and each address a call names is put in
// it before the lookup. Local parts are compared in lower case.
import addresses from 'email-addresses';
import { domainToASCII } from 'node:url';
import type { LaneConfig } from './schema.js';

export type RecipientRule = NonNullable<LaneConfig['tools']['recipients']>;

// The parser backtracks, and RFC 5322's obsolete syntax (obs-phrase,
// obs-local-part: dots and comments between any two words) makes that
// costly: strings like "a.a.a.a…" or "(x)(x)(x)…" take it milliseconds per
// hundred characters, more than linearly. Tool arguments are model output an
// attacker may steer, so values are parsed in strict mode (no obsolete
// syntax: microseconds per address) and only short values that fail it are
// tried in lenient mode (for display names such as `J. Doe <j@example.com>`),
// within a per-call budget; comments may not nest and are few; and what a
// call may hold is bounded. Real recipient lists are far shorter.
const MAX_VALUE_CHARS = 512;
const MAX_CALL_CHARS = 2048;
const MAX_LENIENT_VALUE_CHARS = 128;
const MAX_LENIENT_CALL_CHARS = 512;
const MAX_COMMENTS = 8;
/** Arrays of arrays of addresses are accepted this deep, and no deeper. */
const MAX_DEPTH = 4;

interface Budget {
  lenientChars: number;
}

/** A domain (or "*." + domain) as allow_domains holds it, in ASCII and lower case, or undefined if it is none. */
export function canonicalDomainPattern(pattern: string): string | undefined {
  const wildcard = pattern.startsWith('*.');
  const ascii = asciiDomain(wildcard ? pattern.slice(2) : pattern);
  if (ascii === undefined) return undefined;
  return wildcard ? `*.${ascii}` : ascii;
}

/** An address as allow_addresses holds it (local part and domain in lower case, domain in ASCII), or undefined if it is not one address. */
export function canonicalAddress(address: string): string | undefined {
  const parsed = parseList(address, { lenientChars: 0 });
  if (!parsed || parsed.length !== 1) return undefined;
  return parsed[0];
}

/** ASCII, lower case, at least two labels; undefined for anything else (domain literals such as [127.0.0.1] included). */
function asciiDomain(domain: string): string | undefined {
  const ascii = domainToASCII(domain);
  if (ascii === '' || ascii.endsWith('.') || !/^[a-z0-9-]+(\.[a-z0-9-]+)+$/.test(ascii)) return undefined;
  return ascii;
}

type ParsedList = ReturnType<typeof addresses.parseAddressList>;

function parse(value: string, mode: { strict: boolean }): ParsedList {
  try {
    // RFC 5322 separates with commas; Outlook and many forms use ";", so a list that does not parse with commas is tried with that.
    const options = { input: value, rfc6532: true, strict: mode.strict };
    const list = addresses.parseAddressList(options);
    return list || !value.includes(';') ? list : addresses.parseAddressList({ ...options, addressListSeparator: ';' });
  } catch {
    return null; // the parser recurses; refuse rather than trust a partial parse
  }
}

/** Mailboxes of an address list (groups expanded) in canonical form, or undefined if it does not parse. */
function parseList(value: string, budget: Budget): string[] | undefined {
  if (!commentsSimple(value)) return undefined;
  let list = parse(value, { strict: true });
  if (!list && value.length <= MAX_LENIENT_VALUE_CHARS && (budget.lenientChars += value.length) <= MAX_LENIENT_CALL_CHARS) {
    list = parse(value, { strict: false });
  }
  if (!list || list.length === 0) return undefined;
  const out: string[] = [];
  for (const entry of list) {
    for (const mailbox of entry.type === 'group' ? entry.addresses : [entry]) {
      const domain = asciiDomain(mailbox.domain);
      if (domain === undefined || mailbox.local === '') return undefined;
      out.push(`${mailbox.local.toLowerCase()}@${domain}`);
    }
  }
  return out;
}

/**
 * False when comments (parentheses outside quoted strings) are unbalanced,
 * nested or more than MAX_COMMENTS. The parser would refuse the first and
 * need not see the others, which are where it is slowest.
 */
function commentsSimple(value: string): boolean {
  let open = false;
  let quoted = false;
  let comments = 0;
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c === 0x5c) i++; // a backslash quotes the next char, in quoted strings and comments alike
    else if (c === 0x22 && !open) quoted = !quoted;
    else if (quoted) continue;
    else if (c === 0x28) {
      if (open || ++comments > MAX_COMMENTS) return false;
      open = true;
    } else if (c === 0x29) {
      if (!open) return false;
      open = false;
    }
  }
  return !open && !quoted;
}

interface Collected extends Budget {
  addresses: string[];
  chars: number;
  /** Why a value was refused: a description of it, never the value. */
  problem?: string;
}

function collect(value: unknown, field: string, into: Collected, depth: number): void {
  if (into.problem || value === undefined || value === null) return;
  if (typeof value === 'string') {
    if (value.trim() === '') return; // names nobody
    into.chars += value.length;
    if (value.length > MAX_VALUE_CHARS || into.chars > MAX_CALL_CHARS) {
      into.problem = `its ${field} value is longer than the ${value.length > MAX_VALUE_CHARS ? MAX_VALUE_CHARS : MAX_CALL_CHARS} characters the gateway checks`;
      return;
    }
    const parsed = parseList(value, into);
    if (!parsed) into.problem = `its ${field} value is not a list of e-mail addresses`;
    else into.addresses.push(...parsed);
  } else if (Array.isArray(value)) {
    if (depth >= MAX_DEPTH) into.problem = `its ${field} value nests lists too deeply`;
    else for (const v of value) collect(v, field, into, depth + 1);
  } else if (typeof value === 'object') {
    const o = value as Record<string, unknown>;
    if (o.email === undefined && o.address === undefined) into.problem = `its ${field} value holds an object without an email or address field`;
    else if (depth >= MAX_DEPTH) into.problem = `its ${field} value nests too deeply`;
    else {
      collect(o.email, field, into, depth + 1);
      collect(o.address, field, into, depth + 1);
    }
  } else {
    into.problem = `its ${field} value is a ${typeof value}, not an e-mail address`;
  }
}

function allowed(address: string, rule: RecipientRule): boolean {
  if (rule.allow_addresses.includes(address)) return true;
  const domain = address.slice(address.lastIndexOf('@') + 1);
  return rule.allow_domains.some((d) => (d.startsWith('*.') ? domain.endsWith(d.slice(1)) : domain === d));
}

/**
 * Why a call with these (parsed JSON) arguments breaks the lane's recipient
 * rule, or undefined if it keeps it. Every field in `rule.fields` is read,
 * in any case: a string (an address list), an array of them, or objects
 * with an `email` or `address` field.
 */
export function recipientViolation(rule: RecipientRule, args: unknown, names: { tool: string; lane: string }): string | undefined {
  if (!args || typeof args !== 'object' || Array.isArray(args)) return undefined;
  const found: Collected = { addresses: [], chars: 0, lenientChars: 0 };
  // Field names compare ignoring case: `To` or `BCC` is the same field to many apps (and their mail libraries).
  const fields = new Set(rule.fields.map((f) => f.toLowerCase()));
  for (const [field, value] of Object.entries(args)) if (fields.has(field.toLowerCase())) collect(value, field, found, 0);
  if (found.problem) return `"${names.tool}" cannot be checked against lane ${names.lane}'s recipient rule: ${found.problem}`;
  if (rule.max !== undefined && found.addresses.length > rule.max) {
    return `"${names.tool}" names ${found.addresses.length} recipients; lane ${names.lane} allows at most ${rule.max}`;
  }
  for (const address of found.addresses) {
    if (!allowed(address, rule)) {
      return `"${names.tool}" sends to a recipient at ${address.slice(address.lastIndexOf('@') + 1)}, which lane ${names.lane} does not allow`;
    }
  }
  return undefined;
}
