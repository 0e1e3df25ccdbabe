// Draft-first approvals: tool calls a lane marks `require_approval` are held
// here instead of being handed to the app. Humans decide through the admin
// API; the app polls GET /v1/approvals/{id} with its own key. In Redis they
// survive a gateway restart; in memory they serve a single instance.
import { randomBytes } from 'node:crypto';
import type { RedisStore } from '../stores/redis.js';

export type ApprovalStatus = 'pending' | 'approved' | 'rejected';

export interface Approval {
  id: string;
  status: ApprovalStatus;
  created_at: string;
  decided_at: string | null;
  decided_by: string | null;
  reason: string | null;
  request_id: string;
  key_id: string;
  app: string;
  team: string;
  lane: string;
  model: string;
  tool: string;
  tool_call_id: string;
  /** The call's arguments as the model wrote them (JSON text). */
  arguments: string;
}

export interface ApprovalFilter {
  status?: ApprovalStatus;
  keyId?: string;
  limit: number;
}

export type DecideResult = { ok: true; approval: Approval } | { ok: false; reason: 'not_found' | 'already_decided'; approval?: Approval };

export interface ApprovalStore {
  create(approval: Approval): Promise<void>;
  get(id: string): Promise<Approval | undefined>;
  /** Newest first. */
  list(filter: ApprovalFilter): Promise<Approval[]>;
  /** Moves a pending approval to approved or rejected, exactly once. */
  decide(id: string, status: 'approved' | 'rejected', by: string, reason: string | null): Promise<DecideResult>;
}

export function newApprovalId(): string {
  return `apr_${randomBytes(12).toString('hex')}`;
}

export function createMemoryApprovalStore(maxEntries = 100_000): ApprovalStore {
  const byId = new Map<string, Approval>();
  return {
    async create(approval) {
      byId.set(approval.id, { ...approval });
      // Oldest decided ones go first when the store is full; pending ones stay.
      if (byId.size > maxEntries) {
        for (const [id, a] of byId) {
          if (a.status !== 'pending') {
            byId.delete(id);
            break;
          }
        }
      }
    },
    async get(id) {
      const a = byId.get(id);
      return a && { ...a };
    },
    async list(filter) {
      const out: Approval[] = [];
      for (const a of [...byId.values()].reverse()) {
        if (filter.status && a.status !== filter.status) continue;
        if (filter.keyId && a.key_id !== filter.keyId) continue;
        out.push({ ...a });
        if (out.length >= filter.limit) break;
      }
      return out;
    },
    async decide(id, status, by, reason) {
      const a = byId.get(id);
      if (!a) return { ok: false, reason: 'not_found' };
      if (a.status !== 'pending') return { ok: false, reason: 'already_decided', approval: { ...a } };
      Object.assign(a, { status, decided_by: by, reason, decided_at: new Date().toISOString() });
      return { ok: true, approval: { ...a } };
    },
  };
}

// Decides atomically: only a pending approval changes, whichever replica asks first.
const DECIDE = `
local raw = redis.call('GET', KEYS[1])
if not raw then return {0, ''} end
local a = cjson.decode(raw)
if a.status ~= 'pending' then return {1, raw} end
a.status = ARGV[1]
a.decided_by = ARGV[2]
if ARGV[3] == '' then a.reason = cjson.null else a.reason = ARGV[3] end
a.decided_at = ARGV[4]
local out = cjson.encode(a)
redis.call('SET', KEYS[1], out)
redis.call('ZREM', KEYS[2], a.id)
return {2, out}
`;

export function createRedisApprovalStore(store: RedisStore): ApprovalStore {
  const client = store.client;
  const itemKey = (id: string) => store.key('approval', id);
  const allKey = store.key('approvals', 'all');
  const pendingKey = store.key('approvals', 'pending');
  const parse = (raw: string | null): Approval | undefined => (raw ? (JSON.parse(raw) as Approval) : undefined);

  return {
    async create(approval) {
      const score = Date.parse(approval.created_at);
      await client.multi().set(itemKey(approval.id), JSON.stringify(approval)).zadd(allKey, score, approval.id).zadd(pendingKey, score, approval.id).exec();
    },
    async get(id) {
      if (!/^apr_[0-9a-f]{24}$/.test(id)) return undefined;
      return parse(await client.get(itemKey(id)));
    },
    async list(filter) {
      const index = filter.status === 'pending' ? pendingKey : allKey;
      const out: Approval[] = [];
      // Page through newest first until enough match the filter.
      for (let offset = 0; out.length < filter.limit; offset += 200) {
        const ids = await client.zrevrange(index, offset, offset + 199);
        if (ids.length === 0) break;
        const raws = await client.mget(ids.map(itemKey));
        for (const raw of raws) {
          const a = parse(raw);
          if (!a || (filter.status && a.status !== filter.status) || (filter.keyId && a.key_id !== filter.keyId)) continue;
          out.push(a);
          if (out.length >= filter.limit) break;
        }
      }
      return out;
    },
    async decide(id, status, by, reason) {
      if (!/^apr_[0-9a-f]{24}$/.test(id)) return { ok: false, reason: 'not_found' };
      const [code, raw] = (await client.eval(DECIDE, 2, itemKey(id), pendingKey, status, by, reason ?? '', new Date().toISOString())) as [number, string];
      if (code === 0) return { ok: false, reason: 'not_found' };
      if (code === 1) return { ok: false, reason: 'already_decided', approval: parse(raw) };
      return { ok: true, approval: parse(raw)! };
    },
  };
}
