// The hash chain of the file sink. Each line carries `prev` (the hash of the
// line before it in its chain) and, last, `hash`:
//
//   hash = sha256_hex(<the line up to its hash field> + "}")
//
// The hashed text holds `prev`, so each hash covers the previous record's
// hash and this record: editing a line changes its hash, and removing one
// leaves the next line's `prev` pointing at a hash that is no longer there.
// Verification works on the exact bytes of each line, never on a
// re-serialization.
import { sha256Hex } from '../sha256.js';

export const GENESIS = '0'.repeat(64);

const HASH_TAIL = /,"hash":"([0-9a-f]{64})"\}$/;
const PREV_TAIL = /,"prev":"([0-9a-f]{64})"\}$/;

/**
 * Bytes a sealed line adds to its record's JSON (newline not counted): the
 * record's closing brace goes, `,"prev":"<64 hex>"` and `,"hash":"<64 hex>"}` come.
 */
export const SEAL_BYTES = -1 + 74 + 75;

/**
 * Seals a record's JSON (an object without prev/hash, as UTF-8) into its
 * chained line, written into `buffer` at `at`, which must have room for the
 * JSON's length + SEAL_BYTES. The hash is taken over the bytes in place: no
 * string copy of the line is ever made. Returns the line's hash.
 */
export function sealInto(buffer: Buffer, at: number, json: Buffer, prev: string): string {
  let end = at + json.copy(buffer, at) - 1; // over the record's closing brace
  end += buffer.write(`,"prev":"${prev}"}`, end, 'latin1');
  const hash = sha256Hex(buffer.subarray(at, end));
  buffer.write(`,"hash":"${hash}"}`, end - 1, 'latin1');
  return hash;
}

/** Seals a record's JSON (an object without prev/hash) into its chained line, without the newline. */
export function sealLine(json: string, prev: string): { line: string; hash: string } {
  const bytes = Buffer.from(json);
  const buffer = Buffer.allocUnsafe(bytes.length + SEAL_BYTES);
  const hash = sealInto(buffer, 0, bytes, prev);
  return { line: buffer.toString('utf8'), hash };
}

export type LineCheck =
  | { ok: true; prev: string; hash: string }
  | { ok: false; reason: string; prev?: string; hash?: string };

/** Checks that a line's hash matches its content; says nothing yet about its place in the chain. */
export function checkLine(line: string): LineCheck {
  const h = HASH_TAIL.exec(line);
  if (!h) return { ok: false, reason: line.startsWith('{') && !line.endsWith('}') ? 'incomplete line (a torn write)' : 'no hash field: not a chained record' };
  const body = `${line.slice(0, h.index)}}`;
  const p = PREV_TAIL.exec(body);
  if (!p) return { ok: false, reason: 'no prev field: not a chained record', hash: h[1] };
  const prev = p[1]!;
  const hash = h[1]!;
  if (sha256Hex(body) !== hash) return { ok: false, reason: 'its content does not match its hash (the record was changed)', prev, hash };
  return { ok: true, prev, hash };
}

/** The hash of a chained line, without checking it (for resuming a chain from a file's last line). */
export function lineHash(line: string): string | undefined {
  return HASH_TAIL.exec(line)?.[1];
}

const LINK_TAIL = /,"prev":"([0-9a-f]{64})","hash":"[0-9a-f]{64}"\}$/;

/** The `prev` a sealed line claims, without checking it. */
export function linePrev(line: string): string | undefined {
  return LINK_TAIL.exec(line)?.[1];
}
