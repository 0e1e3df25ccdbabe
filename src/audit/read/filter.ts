// The audit list's filters, parsed once for both readers of the trail: the
// admin API (`GET /admin/audit?team=...`) and the CLI (`lanegate audit list
// --team ...`) take the same names, the same values and fail the same way.
import { GatewayError } from '../../errors.js';
import { AUDIT_ORDERS, decodeCursor, type AuditFilter, type AuditOrder } from './query.js';

export const MAX_AUDIT_LIMIT = 1000;

/** Filter names, as query parameters and (with `--`) CLI flags. */
export const AUDIT_FILTER_NAMES = ['from', 'to', 'team', 'app', 'lane', 'model', 'status', 'kind', 'limit', 'order', 'after'] as const;
export type AuditFilterName = (typeof AUDIT_FILTER_NAMES)[number];

function instant(raw: string | undefined, param: string): number | undefined {
  if (raw === undefined) return undefined;
  const ms = /^\d+$/.test(raw) ? Number(raw) : Date.parse(raw);
  if (!Number.isFinite(ms)) throw new GatewayError('invalid_request', `${param} must be an ISO 8601 time (2025-01-31T12:00:00Z) or milliseconds since the epoch.`, { param });
  return ms;
}

/** Reads each filter through `value` (empty counts as absent); throws `invalid_request` naming the bad one. */
export function parseAuditFilter(value: (name: AuditFilterName) => string | undefined): AuditFilter {
  const q = (name: AuditFilterName) => value(name) || undefined;
  const status = q('status');
  if (status !== undefined && !/^([1-5]xx|[1-5]\d\d)$/i.test(status)) {
    throw new GatewayError('invalid_request', 'status must be an HTTP status (429) or a class (5xx).', { param: 'status' });
  }
  const rawLimit = q('limit');
  const limit = rawLimit === undefined ? 100 : Number(rawLimit);
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_AUDIT_LIMIT) throw new GatewayError('invalid_request', `limit must be a whole number from 1 to ${MAX_AUDIT_LIMIT}.`, { param: 'limit' });
  const order = q('order');
  if (order !== undefined && !(AUDIT_ORDERS as readonly string[]).includes(order)) throw new GatewayError('invalid_request', 'order must be oldest (the default) or newest.', { param: 'order' });
  const after = q('after');
  const cursor = after === undefined ? undefined : decodeCursor(after);
  if (after !== undefined && !cursor) throw new GatewayError('invalid_request', 'after must be the `next` value of a previous page.', { param: 'after' });
  return {
    from: instant(q('from'), 'from'),
    to: instant(q('to'), 'to'),
    team: q('team'),
    app: q('app'),
    lane: q('lane'),
    model: q('model'),
    status,
    kind: q('kind'),
    limit,
    order: order as AuditOrder | undefined,
    after: cursor,
  };
}
