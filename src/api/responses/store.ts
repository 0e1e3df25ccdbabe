// Stored responses (`store`, `previous_response_id`, GET/DELETE
// /v1/responses/{id}): one small interface, two implementations, as the
// cache's store. Memory is the single-instance default; Redis lets any replica
// continue a conversation another one started.
//
// Every read and write is scoped to a team: the team is part of the address,
// so another team's id reads as absent (a 404, never a 403 that would confirm
// the id exists). A record lives no longer than its lane's audit retention.
//
// What a record holds follows the lane's audit rule (`audit.bodies`):
// - `full` and `redacted`: the bodies, as the client saw them after the lane's
//   redaction: the input items of the conversation and the Response.
// - `hash`: only sha256 hashes of the input and output, with the Response's
//   metadata (status, model, usage) and an empty output. Decision for red
//   lanes (issue K left refuse-or-hash open): storing hashes keeps
//   `store: true` working for clients that set it by default (the openai SDK
//   and the Agents SDK do) and keeps GET /v1/responses/{id} answering for
//   usage, while no conversation text outlives the request. A later
//   `previous_response_id` naming such a record is refused with a 400 that
//   says to resend the conversation as input (conversation.ts).
import type { RedisStore } from '../../stores/redis.js';
import { GatewayError } from '../../errors.js';
import type { ResponsesInputItem } from './schema.js';
import type { ResponseObject } from './types.js';

export type StoredBodies = 'full' | 'hash';

interface RecordBase {
  id: string;
  team: string;
  /** Unix ms. */
  storedAt: number;
}

export type StoredResponse =
  | (RecordBase & {
      bodies: 'full';
      /** The whole conversation this response answered: earlier turns' items, then this request's input. Instructions are not part of it. */
      inputItems: ResponsesInputItem[];
      response: ResponseObject;
    })
  | (RecordBase & {
      bodies: 'hash';
      /** sha256 hex of the canonical JSON of the input items and of the output. */
      inputHash: string;
      outputHash: string;
      /** The Response with `output: []`, instructions and metadata cleared. */
      response: ResponseObject;
    });

export interface ResponsesStore {
  readonly kind: 'memory' | 'redis';
  /** Keeps the record for ttlMs; the caller does not change it afterwards. Rejects with a 503 GatewayError when the backend fails. */
  put(record: StoredResponse, ttlMs: number): Promise<void>;
  /** The team's record, or undefined (absent, expired, or another team's). */
  get(team: string, id: string): Promise<StoredResponse | undefined>;
  /** True when the team's record existed. */
  delete(team: string, id: string): Promise<boolean>;
  /**
   * Changes the team's record atomically (compare-and-set), keeping it for
   * ttlMs: `change` gets the record as stored and returns the new one, or
   * undefined to leave it; with Redis it is called again if another writer
   * changed the record meanwhile, so it must be a pure function of its
   * argument. So a background response's cancel and its worker's writes
   * (in_progress, the answer, failed) cannot overwrite each other.
   * undefined when there is no such record.
   */
  update(team: string, id: string, change: (record: StoredResponse) => StoredResponse | undefined, ttlMs: number): Promise<{ record: StoredResponse; changed: boolean } | undefined>;
}

const DAY_MS = 86_400_000;
/** OpenAI keeps stored responses 30 days; the gateway keeps them no longer, and less when the lane says so. */
export const DEFAULT_MAX_RETENTION_DAYS = 30;

export function storedResponseTtlMs(lane: { audit: { retention_days: number } }, maxDays = DEFAULT_MAX_RETENTION_DAYS): number {
  return Math.min(lane.audit.retention_days, maxDays) * DAY_MS;
}

export function storedBodies(lane: { audit: { bodies: 'full' | 'redacted' | 'hash' } }): StoredBodies {
  return lane.audit.bodies === 'hash' ? 'hash' : 'full';
}

function storeUnavailable(cause: unknown): GatewayError {
  return new GatewayError('service_unavailable', 'Stored responses are unavailable right now; retry, or send the request with "store": false and the whole conversation as input.', { cause });
}

export interface MemoryResponsesStoreOptions {
  /** Oldest records are dropped beyond this many; memory is bounded whatever the traffic. */
  maxEntries?: number;
}

export function createMemoryResponsesStore(options: MemoryResponsesStoreOptions = {}): ResponsesStore {
  const maxEntries = options.maxEntries ?? 10_000;
  // Insertion order is age order, so the first entry is always the oldest.
  // The write every stored request pays keeps the record as given: it is
  // built for the store (buildStoredRecord) from the request and the
  // Response as sent, which nothing changes once the reply is out. Reads,
  // far rarer, hand out copies, so no reader can change what is kept.
  const entries = new Map<string, { record: StoredResponse; expiresAt: number }>();
  const address = (team: string, id: string) => `${team}\u0000${id}`;
  return {
    kind: 'memory',
    async put(record, ttlMs) {
      const key = address(record.team, record.id);
      entries.delete(key);
      entries.set(key, { record, expiresAt: Date.now() + ttlMs });
      while (entries.size > maxEntries) entries.delete(entries.keys().next().value!);
    },
    async get(team, id) {
      const key = address(team, id);
      const entry = entries.get(key);
      if (!entry) return undefined;
      if (entry.expiresAt <= Date.now()) {
        entries.delete(key);
        return undefined;
      }
      return structuredClone(entry.record);
    },
    async delete(team, id) {
      const key = address(team, id);
      const entry = entries.get(key);
      entries.delete(key);
      return entry !== undefined && entry.expiresAt > Date.now();
    },
    async update(team, id, change, ttlMs) {
      // One thread: the read, the change and the write happen with nothing in between.
      const key = address(team, id);
      const entry = entries.get(key);
      if (!entry || entry.expiresAt <= Date.now()) return undefined;
      const next = change(structuredClone(entry.record));
      if (!next) return { record: structuredClone(entry.record), changed: false };
      entries.delete(key);
      entries.set(key, { record: structuredClone(next), expiresAt: Date.now() + ttlMs });
      return { record: next, changed: true };
    },
  };
}

/** Layout of the record under the key; bump it when StoredResponse changes incompatibly. */
const LAYOUT = 'r1';

// KEYS: the record. ARGV: the record as read, the new record, ttl ms. Compare-and-set on the whole text.
const UPDATE = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1
`;

export function createRedisResponsesStore(redis: RedisStore): ResponsesStore {
  // Team names and ids come from config and clients: encoded, so neither can forge a `:` boundary.
  const name = (team: string, id: string) => redis.key('responses', LAYOUT, encodeURIComponent(team), encodeURIComponent(id));
  return {
    kind: 'redis',
    async put(record, ttlMs) {
      try {
        await redis.client.set(name(record.team, record.id), JSON.stringify(record), 'PX', Math.max(1, Math.round(ttlMs)));
      } catch (err) {
        throw storeUnavailable(err);
      }
    },
    async get(team, id) {
      let raw: string | null;
      try {
        raw = await redis.client.get(name(team, id));
      } catch (err) {
        throw storeUnavailable(err);
      }
      if (raw === null) return undefined;
      const record = JSON.parse(raw) as StoredResponse;
      // The address already says so; checked again so a mis-keyed write can never leak across teams.
      return record.team === team && record.id === id ? record : undefined;
    },
    async delete(team, id) {
      try {
        return (await redis.client.del(name(team, id))) > 0;
      } catch (err) {
        throw storeUnavailable(err);
      }
    },
    async update(team, id, change, ttlMs) {
      const key = name(team, id);
      try {
        for (;;) {
          const raw = await redis.client.get(key);
          if (raw === null) return undefined;
          const record = JSON.parse(raw) as StoredResponse;
          if (record.team !== team || record.id !== id) return undefined;
          const next = change(JSON.parse(raw) as StoredResponse);
          if (!next) return { record, changed: false };
          if ((await redis.client.eval(UPDATE, 1, key, raw, JSON.stringify(next), String(Math.max(1, Math.round(ttlMs))))) === 1) return { record: next, changed: true };
        }
      } catch (err) {
        throw storeUnavailable(err);
      }
    },
  };
}

export function createResponsesStore(options: { redis: RedisStore | undefined; maxEntries?: number }): ResponsesStore {
  return options.redis ? createRedisResponsesStore(options.redis) : createMemoryResponsesStore({ maxEntries: options.maxEntries });
}
