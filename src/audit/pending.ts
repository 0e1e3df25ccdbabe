// A record on its way to a sink: serialized once, with the few fields the
// file index and the stream sink need to file it without parsing it again.
// It waits for its batch as UTF-8 bytes, outside the JS heap: a JSON string
// held that long (the batch lingers) outlived young-generation collections,
// and every scavenge copied it again.
import { serializeEntry } from './raw-json.js';
import { requestRecordJson } from './request-json.js';
import { chainOf, type AuditEntry, type AuditRequestRecord } from './schema.js';

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
  };
}

/** facetsOf for the record written on every request, read member by member. */
function requestFacets(r: AuditRequestRecord): Facets {
  return { id: r.id, time: Date.parse(r.time) || 0, kind: 'request', team: r.team, app: r.app, lane: r.lane?.name ?? null, model: r.model, status: r.status };
}

export function toPending(entry: AuditEntry): PendingRecord {
  if (entry.kind === 'request') return { chain: chainOf(entry), bytes: Buffer.from(requestRecordJson(entry)), facets: requestFacets(entry) };
  return { chain: chainOf(entry), bytes: serializeEntry(entry), facets: facetsOf(entry as Record<string, unknown>) };
}
