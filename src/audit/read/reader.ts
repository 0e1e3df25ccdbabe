// Reading the trail back in bulk, wherever the sink wrote it: the usage
// ledger (budgets rebuild, `lanegate costs`, /admin/usage), shadow reports
// and the crash check read records through this one interface instead of
// knowing the file layout or the stream layout. Implemented over the file
// sink's folder (file-reader.ts) and the Redis streams (redis-reader.ts);
// the admin API's paged lookups by facet are query.ts, which has indexes to
// use.
import { lineIntegrity, type LineIntegrity, type ReadOptions } from './integrity.js';

/** A line as the sink stored it (the record's JSON, sealed), with what checking its seal needs. */
export interface StoredLine {
  line: string;
  /** How the line's seal is checked: required in chain files, optional where older versions wrote none. */
  sealed: ReadOptions['sealed'];
  /** The line after it in its file, whose `prev` must name it (files only). */
  next?: string;
}

/** Record time bounds, ms: [from, to). */
export interface TimeRange {
  from?: number;
  to?: number;
}

export interface RecordFilter extends TimeRange {
  /** Kinds of record wanted; a record without a kind is a request (version 1 wrote none). */
  kinds?: readonly string[];
  /**
   * Text every wanted record's line holds (a member name, a kind): other
   * lines are skipped before they are parsed, which is most of the cost of
   * reading a month of records.
   */
  holding?: string;
  /**
   * Parse only what comes before a request record's bodies: the bulk of the
   * record, and nothing a report over costs or counts needs.
   */
  skipBodies?: boolean;
}

export interface StoredRecord {
  /** The record as parsed (up to its bodies with `skipBodies`). */
  record: Record<string, unknown>;
  /** Record time, ms. */
  time: number;
  line: string;
  /** What the line's seal says of it; hashes the whole line, so only callers that report it ask. */
  integrity(): LineIntegrity;
}

export interface AuditReader {
  /** Where the records are read from, as a report names it: the folder, or `redis streams`. */
  readonly source: string;
  /**
   * Every stored line that may hold a record timed in the range, in storage
   * order (file by file, stream by stream; not sorted by time across them).
   * Coarse: whole files, whole stream pages; the records' own times are not
   * checked.
   */
  lines(range: TimeRange): AsyncIterable<StoredLine>;
  /** The records timed in [from, to) that pass the filter, in storage order. */
  records(filter: RecordFilter): AsyncIterable<StoredRecord>;
}

/** A reader over a source of lines: `records` is the same filter whatever stores them. */
export function createReader(source: string, lines: (range: TimeRange) => AsyncIterable<StoredLine>): AuditReader {
  return { source, lines, records: (filter) => filterRecords(lines(filter), filter) };
}

async function* filterRecords(lines: AsyncIterable<StoredLine>, f: RecordFilter): AsyncGenerator<StoredRecord> {
  const from = f.from ?? 0;
  const to = f.to ?? Infinity;
  for await (const stored of lines) {
    const { line } = stored;
    if (f.holding !== undefined && !line.includes(f.holding)) continue;
    let record: unknown;
    try {
      record = JSON.parse(f.skipBodies ? headOf(line) : line);
    } catch {
      continue; // a torn last line: the audit verifier reports it
    }
    if (!record || typeof record !== 'object' || Array.isArray(record)) continue;
    const r = record as Record<string, unknown>;
    if (f.kinds && !f.kinds.includes((r.kind ?? 'request') as string)) continue;
    const time = r.time ? Date.parse(String(r.time)) : NaN;
    if (!(time >= from && time < to)) continue;
    yield { record: r, time, line, integrity: () => lineIntegrity(line, stored) };
  }
}

// A request record's bodies (the largest part by far, and last but for a few
// small fields) come after everything else it holds. The marker cannot occur
// earlier: inside a JSON string a quote is escaped, and no other member named
// "bodies" holds an object with "mode".
const BODIES = ',"bodies":{"mode":';

function headOf(line: string): string {
  const cut = line.indexOf(BODIES);
  return cut < 0 ? line : `${line.slice(0, cut)}}`;
}
