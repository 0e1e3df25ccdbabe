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
// This catches a record edited in place. It does not stop someone who also
// recomputes the hashes: in the file sink the next record's `prev` then no
// longer matches, which `lanegate audit verify` reports.
import { checkLine } from './chain.js';

export type Integrity = 'ok' | 'mismatch' | 'unsealed';

export interface LineIntegrity {
  integrity: Integrity;
  /** Why, for a mismatch. */
  reason?: string;
}

/**
 * What a stored line's hash says of it. `sealed: 'required'` where every
 * line carries one (the file sink's chains): a line without one was changed.
 */
export function lineIntegrity(line: string, o: { sealed: 'required' | 'optional' }): LineIntegrity {
  const check = checkLine(line);
  if (check.ok) return { integrity: 'ok' };
  if (check.hash === undefined && o.sealed === 'optional') return { integrity: 'unsealed' };
  return { integrity: 'mismatch', reason: check.reason };
}

/** Parses a stored line into the record served, marked with its integrity; undefined when it is not JSON. */
export function readRecord(line: string, o: { sealed: 'required' | 'optional' }): Record<string, unknown> | undefined {
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
