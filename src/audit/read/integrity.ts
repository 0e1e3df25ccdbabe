// Reading a record checks it. Every record the gateway serves back (the
// admin audit API, usage reports) is checked against the hash sealed into
// it when it was written (chain.ts): a record changed where it is stored is
// served flagged, never as if it were genuine.
//
//   ok        its hash matches its bytes
//   mismatch  it was changed after it was written (or its seal was removed)
//   unsealed  written before records carried a hash (Redis entries of older
//             versions, version-1 files): nothing to check against
//
// This catches a record edited in place. Someone who also recomputes its
// hash is caught where the record after it in its file is at hand (the file
// sink's reads pass it as `next`): that record's `prev`, sealed under its own
// hash, still names the original. What no read can catch alone (the newest
// line of a chain rewritten, or every line after an edit rehashed) is left to
// `lanegate audit verify` and the intent log.
import { checkLine, lineHash, linePrev } from '../chain.js';

export type Integrity = 'ok' | 'mismatch' | 'unsealed';

export interface LineIntegrity {
  integrity: Integrity;
  /** Why, for a mismatch. */
  reason?: string;
}

export interface ReadOptions {
  sealed: 'required' | 'optional';
  /** The line after this one in its chain file, where the reader has it: its `prev` must name this line's hash. */
  next?: string;
}

/**
 * What a stored line's hash says of it. `sealed: 'required'` where every
 * line carries one (the file sink's chains): a line without one was changed.
 */
export function lineIntegrity(line: string, o: ReadOptions): LineIntegrity {
  const check = checkLine(line);
  if (check.ok) {
    const next = o.next === undefined ? undefined : linePrev(o.next);
    if (next !== undefined && next !== lineHash(line)) {
      return { integrity: 'mismatch', reason: 'the next record in its chain does not point at it (it was rewritten with a new hash, or records after it were removed)' };
    }
    return { integrity: 'ok' };
  }
  if (check.hash === undefined && o.sealed === 'optional') return { integrity: 'unsealed' };
  return { integrity: 'mismatch', reason: check.reason };
}

/** Parses a stored line into the record served, marked with its integrity; undefined when it is not JSON. */
export function readRecord(line: string, o: ReadOptions): Record<string, unknown> | undefined {
  let record: Record<string, unknown>;
  try {
    record = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return undefined;
  }
  if (!record || typeof record !== 'object' || Array.isArray(record)) return undefined;
  const checked = lineIntegrity(line, o);
  record.integrity = checked.integrity;
  if (checked.reason) record.integrity_reason = checked.reason;
  return record;
}

/** The counts a list of records served carries beside them. */
export function integrityCounts(records: ReadonlyArray<Record<string, unknown>>): { checked: number; mismatched: number; unsealed: number } {
  let mismatched = 0;
  let unsealed = 0;
  for (const r of records) {
    if (r.integrity === 'mismatch') mismatched++;
    else if (r.integrity === 'unsealed') unsealed++;
  }
  return { checked: records.length, mismatched, unsealed };
}
