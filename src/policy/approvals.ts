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
  /** What was held: a model's tool call for the app to run (absent in older records), or an MCP tool call the gateway runs once approved. */
  kind?: ApprovalKind;
  /** MCP calls: where the call goes and until when a decision lets it run. */
  mcp?: McpHeldCall;
  /** MCP calls: the gateway's one execution of the approved call, once claimed. */
  execution?: ApprovalExecution;
}

export type ApprovalKind = 'model_tool_call' | 'mcp_tool_call';

export interface McpHeldCall {
  server: string;
  /** The tool's name on its server. */
  tool: string;
  /** The namespaced name in canonical form (tool-name.ts). */
  canonical: string;
  run_id: string | null;
  /** An approval decided after this instant no longer lets the call run. */
  expires_at: string;
}

export interface ApprovalExecution {
  /** running: claimed by one replica, which runs it; done: its result is here. */
  status: 'running' | 'done';
  started_at: string;
  finished_at: string | null;
  /** The result the agent gets (CallToolResult JSON text, after the lane's result detectors); null until done. */
  result: string | null;
  /** Why the execution failed, when it did. */
  error: string | null;
}

/** Why an execution was not claimed: the decision, the expiry, or another claim. */
export type ClaimRefusal = 'not_found' | 'not_mcp' | 'pending' | 'rejected' | 'expired' | 'running' | 'done';

export type ClaimResult = { ok: true; approval: Approval } | { ok: false; reason: ClaimRefusal; approval?: Approval };

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
  /**
   * Claims the one execution of an approved MCP call, atomically: true for
   * exactly one caller across retries and replicas, and never for a call
   * pending, rejected or approved after it expired. A claim is never given
   * again, even when its replica dies while running it: at most once.
   */
  claim(id: string, now: Date): Promise<ClaimResult>;
  /** Stores the claimed execution's result (JSON text) or error. */
  finish(id: string, outcome: { result: string | null; error: string | null }): Promise<void>;
}

/** Whether an MCP approval may run now, judged on the record: the rule both stores apply atomically. */
function claimRefusal(a: Approval, now: Date): ClaimRefusal | undefined {
  if (a.kind !== 'mcp_tool_call' || !a.mcp) return 'not_mcp';
  if (a.execution) return a.execution.status;
  if (a.status === 'rejected') return 'rejected';
  const expires = Date.parse(a.mcp.expires_at);
  if (a.status === 'pending') return now.getTime() > expires ? 'expired' : 'pending';
  return a.decided_at && Date.parse(a.decided_at) > expires ? 'expired' : undefined;
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
    async claim(id, now) {
      const a = byId.get(id);
      if (!a) return { ok: false, reason: 'not_found' };
      const refused = claimRefusal(a, now);
      if (refused) return { ok: false, reason: refused, approval: structuredClone(a) };
      a.execution = { status: 'running', started_at: now.toISOString(), finished_at: null, result: null, error: null };
      return { ok: true, approval: structuredClone(a) };
    },
    async finish(id, outcome) {
      const a = byId.get(id);
      if (!a?.execution) return;
      a.execution = { ...a.execution, status: 'done', finished_at: new Date().toISOString(), ...outcome };
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

// The same rule as claimRefusal, in one script so two replicas cannot both
// claim. Times compare as ms since the epoch, passed in (ARGV[2]) and parsed
// by the caller from the record's ISO strings (ARGV is the caller's clock).
const CLAIM = `
local raw = redis.call('GET', KEYS[1])
if not raw then return {0, ''} end
local a = cjson.decode(raw)
if a.kind ~= 'mcp_tool_call' or type(a.mcp) ~= 'table' then return {1, 'not_mcp', raw} end
if type(a.execution) == 'table' then return {1, a.execution.status, raw} end
if a.status == 'rejected' then return {1, 'rejected', raw} end
if a.status == 'pending' then
  if tonumber(ARGV[1]) > tonumber(ARGV[3]) then return {1, 'expired', raw} end
  return {1, 'pending', raw}
end
local decided = tonumber(ARGV[4])
if decided == 0 then decided = tonumber(ARGV[1]) end
if decided > tonumber(ARGV[3]) then return {1, 'expired', raw} end
a.execution = {status = 'running', started_at = ARGV[2], finished_at = cjson.null, result = cjson.null, error = cjson.null}
local out = cjson.encode(a)
redis.call('SET', KEYS[1], out)
return {2, '', out}
`;

const FINISH = `
local raw = redis.call('GET', KEYS[1])
if not raw then return 0 end
local a = cjson.decode(raw)
if type(a.execution) ~= 'table' then return 0 end
a.execution.status = 'done'
a.execution.finished_at = ARGV[1]
if ARGV[2] == '' then a.execution.result = cjson.null else a.execution.result = ARGV[2] end
if ARGV[3] == '' then a.execution.error = cjson.null else a.execution.error = ARGV[3] end
redis.call('SET', KEYS[1], cjson.encode(a))
return 1
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
    async claim(id, now) {
      if (!/^apr_[0-9a-f]{24}$/.test(id)) return { ok: false, reason: 'not_found' };
      // Expiry and decision times are read from the record first: the script compares numbers, cjson has no date parser.
      const before = parse(await client.get(itemKey(id)));
      if (!before) return { ok: false, reason: 'not_found' };
      const expires = before.mcp ? Date.parse(before.mcp.expires_at) : 0;
      const decided = before.decided_at ? Date.parse(before.decided_at) : 0;
      // Decided between this read and the script: the script takes now as the decision time, which errs towards expired.
      const [code, why, raw] = (await client.eval(CLAIM, 1, itemKey(id), String(now.getTime()), now.toISOString(), String(expires), String(decided))) as [number, string, string];
      if (code === 0) return { ok: false, reason: 'not_found' };
      if (code === 1) return { ok: false, reason: why as ClaimRefusal, approval: parse(raw) };
      return { ok: true, approval: parse(raw)! };
    },
    async finish(id, outcome) {
      await client.eval(FINISH, 1, itemKey(id), new Date().toISOString(), outcome.result ?? '', outcome.error ?? '');
    },
  };
}
