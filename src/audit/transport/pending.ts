// A record on its way to a sink: serialized once, with the few fields the
// file index and the stream sink need to file it without parsing it again.
// It waits for its batch as UTF-8 bytes, outside the JS heap: a JSON string
// held that long (the batch lingers) outlived young-generation collections,
// and every scavenge copied it again.
import { requestRecordJson } from '../request-json.js';
import { chainOf, type AuditEntry } from '../schema.js';

/** What queries filter on; kept in the file index and derived again from JSON after a spool replay. */
export interface Facets {
  id: string;
  /** Record time, ms since the epoch. */
  time: number;
  kind: string;
  team: string | null;
  app: string | null;
  lane: string | null;
  /** The model the app asked for. */
  model: string | null;
  status: number | null;
  /** W3C trace and span ids (hex) of the request, for the OTLP logs mirror's trace link. */
  traceId?: string | null;
  spanId?: string | null;
}

export interface PendingRecord {
  /** The lane, or _gateway / _purges: the file chain or stream it goes to. */
  chain: string;
  /** The record as one line of JSON (UTF-8), without chain fields. */
  bytes: Buffer;
  facets: Facets;
}

export function facetsOf(entry: Record<string, unknown>): Facets {
  const str = (v: unknown) => (typeof v === 'string' ? v : null);
  const lane = entry.lane;
  return {
    id: String(entry.id ?? ''),
    time: Date.parse(String(entry.time ?? '')) || 0,
    kind: String(entry.kind ?? 'request'),
    team: str(entry.team),
    app: str(entry.app),
    lane: typeof lane === 'string' ? lane : lane && typeof lane === 'object' ? str((lane as { name?: unknown }).name) : null,
    model: str(entry.model),
    status: typeof entry.status === 'number' ? entry.status : null,
    traceId: str(entry.trace_id),
    spanId: str(entry.span_id),
  };
}

export function toPending(entry: AuditEntry): PendingRecord {
  // Request records, one per request, are written from their template; the others are rare.
  const json = entry.kind === 'request' ? requestRecordJson(entry) : JSON.stringify(entry);
  return { chain: chainOf(entry), bytes: Buffer.from(json), facets: facetsOf(entry as Record<string, unknown>) };
}
