// Run budgets for tool calls through the MCP gateway: per run (the
// `x-gateway-run-id` header, or the MCP session), the most tool calls, the
// longest run time (from its first tool call) and the calls in flight; per
// key and tool, calls per minute. `tool_runs:` in gateway.yaml holds the
// rules; each applies to the keys and lanes it names, and where several
// apply the strictest value of each limit wins. The counters live in memory
// for one instance, in Redis (one Lua script per call) for several.
import { z } from 'zod';
import { toolKey } from '../policy/tool-name.js';
import type { RedisStore } from '../stores/redis.js';

const toolRunRule = z.strictObject({
  /** Keys (by id) this rule applies to; all keys when unset. */
  keys: z.array(z.string().min(1)).min(1).optional(),
  /** Lanes this rule applies to; all lanes when unset. */
  lanes: z.array(z.string().min(1)).min(1).optional(),
  /** Tool calls one run may make (refused calls not counted). */
  max_tool_calls: z.number().int().min(0).optional(),
  /** A run may call tools for this long after its first tool call. */
  max_runtime_ms: z.number().int().positive().optional(),
  /** Tool calls of one run in flight at once. */
  max_concurrent: z.number().int().positive().optional(),
  /** Calls per minute to these tools (namespaced names, "*" for any), per key and tool. */
  rate_limits: z
    .array(
      z.strictObject({
        tools: z.array(z.string().min(1)).min(1),
        per_minute: z.number().int().positive(),
      }),
    )
    .default([]),
});

export const toolRunsSchema = z.array(toolRunRule).default([]);
export type ToolRunRule = z.infer<typeof toolRunRule>;

/** The limit a refusal names; stable, in the refuse decision's rule as `tool_runs.<limit>`. */
export type ToolRunLimit = 'max_tool_calls' | 'max_runtime_ms' | 'max_concurrent' | 'per_minute';

export interface ToolRunLimits {
  maxToolCalls?: number;
  maxRuntimeMs?: number;
  maxConcurrent?: number;
  perMinute?: number;
}

/** The strictest of each limit over the rules that apply to this call; undefined when none does. */
export function toolRunLimits(rules: readonly ToolRunRule[], call: { keyId: string; lane: string; name: string }): ToolRunLimits | undefined {
  let out: ToolRunLimits | undefined;
  const min = (a: number | undefined, b: number | undefined) => (a === undefined ? b : b === undefined ? a : Math.min(a, b));
  const key = toolKey(call.name);
  for (const r of rules) {
    if (r.keys && !r.keys.includes(call.keyId)) continue;
    if (r.lanes && !r.lanes.includes(call.lane)) continue;
    out ??= {};
    out.maxToolCalls = min(out.maxToolCalls, r.max_tool_calls);
    out.maxRuntimeMs = min(out.maxRuntimeMs, r.max_runtime_ms);
    out.maxConcurrent = min(out.maxConcurrent, r.max_concurrent);
    for (const rl of r.rate_limits) if (rl.tools.some((t) => t === '*' || toolKey(t) === key)) out.perMinute = min(out.perMinute, rl.per_minute);
  }
  return out;
}

export interface ToolRunCall {
  /** The run's id, scoped by key: a run id names a run of one key only. */
  run: string;
  /** Key id and canonical tool name: the per-minute counter's scope. */
  rate: string;
  limits: ToolRunLimits;
  now: number;
}

export type ToolRunVerdict = { ok: true } | { ok: false; limit: ToolRunLimit; message: string };

export interface ToolRunStore {
  /** Checks every limit and, when all pass, counts the call and one in flight, atomically. */
  acquire(call: ToolRunCall): Promise<ToolRunVerdict>;
  /** The call finished: one fewer in flight. */
  release(run: string): Promise<void>;
}

/** A run's counters expire this long after its last call. */
const RUN_IDLE_MS = 24 * 60 * 60 * 1000;
const MINUTE_MS = 60_000;

function refusal(limit: ToolRunLimit, limits: ToolRunLimits, seen: number): ToolRunVerdict {
  switch (limit) {
    case 'max_tool_calls':
      return { ok: false, limit, message: `This run has made ${seen} tool calls; its budget allows ${limits.maxToolCalls}. Start a new run or ask for a higher limit.` };
    case 'max_runtime_ms':
      return { ok: false, limit, message: `This run has been calling tools for ${seen} ms; its budget allows ${limits.maxRuntimeMs} ms.` };
    case 'max_concurrent':
      return { ok: false, limit, message: `This run already has ${seen} tool calls in flight; at most ${limits.maxConcurrent} are allowed. Retry when one finishes.` };
    case 'per_minute':
      return { ok: false, limit, message: `This tool was called ${seen} times in the last minute by your key; at most ${limits.perMinute} are allowed. Retry in a minute.` };
  }
}

export function createMemoryToolRunStore(maxRuns = 100_000): ToolRunStore {
  const runs = new Map<string, { start: number; calls: number; inflight: number; last: number }>();
  const rates = new Map<string, { window: number; count: number }>();
  return {
    async acquire({ run, rate, limits, now }) {
      let r = runs.get(run);
      const start = r?.start ?? now;
      if (limits.maxRuntimeMs !== undefined && now - start > limits.maxRuntimeMs) return refusal('max_runtime_ms', limits, now - start);
      if (limits.maxToolCalls !== undefined && (r?.calls ?? 0) >= limits.maxToolCalls) return refusal('max_tool_calls', limits, r?.calls ?? 0);
      if (limits.maxConcurrent !== undefined && (r?.inflight ?? 0) >= limits.maxConcurrent) return refusal('max_concurrent', limits, r?.inflight ?? 0);
      const window = Math.floor(now / MINUTE_MS);
      const rl = rates.get(rate);
      const count = rl?.window === window ? rl.count : 0;
      if (limits.perMinute !== undefined && count >= limits.perMinute) return refusal('per_minute', limits, count);
      if (!r) {
        // Bounded: the oldest runs go first (insertion order), as the Redis keys would expire.
        if (runs.size >= maxRuns) for (const [id, old] of runs) if (old.inflight === 0 || now - old.last > RUN_IDLE_MS) { runs.delete(id); break; }
        runs.set(run, (r = { start, calls: 0, inflight: 0, last: now }));
      }
      r.calls++;
      r.inflight++;
      r.last = now;
      if (limits.perMinute !== undefined) {
        if (rates.size >= maxRuns) rates.clear(); // windows last a minute: losing them errs towards allowing, once
        rates.set(rate, { window, count: count + 1 });
      }
      return { ok: true };
    },
    async release(run) {
      const r = runs.get(run);
      if (r && r.inflight > 0) r.inflight--;
    },
  };
}

// One script per call: read every counter, refuse or count, so two replicas
// never both take the last call of a budget. -1 means "no such limit".
const ACQUIRE = `
local now = tonumber(ARGV[1])
local maxCalls, maxRuntime, maxConc, perMinute = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local start = tonumber(redis.call('HGET', KEYS[1], 'start') or now)
if maxRuntime >= 0 and now - start > maxRuntime then return {0, 'max_runtime_ms', now - start} end
local calls = tonumber(redis.call('HGET', KEYS[1], 'calls') or 0)
if maxCalls >= 0 and calls >= maxCalls then return {0, 'max_tool_calls', calls} end
local inflight = tonumber(redis.call('HGET', KEYS[1], 'inflight') or 0)
if maxConc >= 0 and inflight >= maxConc then return {0, 'max_concurrent', inflight} end
if perMinute >= 0 then
  local n = tonumber(redis.call('GET', KEYS[2]) or 0)
  if n >= perMinute then return {0, 'per_minute', n} end
  redis.call('INCR', KEYS[2])
  redis.call('PEXPIRE', KEYS[2], 120000)
end
redis.call('HSETNX', KEYS[1], 'start', now)
redis.call('HINCRBY', KEYS[1], 'calls', 1)
redis.call('HINCRBY', KEYS[1], 'inflight', 1)
redis.call('PEXPIRE', KEYS[1], ARGV[6])
return {1, '', 0}
`;

const RELEASE = `
local n = tonumber(redis.call('HGET', KEYS[1], 'inflight') or 0)
if n > 0 then redis.call('HINCRBY', KEYS[1], 'inflight', -1) end
return 1
`;

export function createRedisToolRunStore(store: RedisStore): ToolRunStore {
  const client = store.client;
  const n = (v: number | undefined) => String(v ?? -1);
  return {
    async acquire({ run, rate, limits, now }) {
      const window = Math.floor(now / MINUTE_MS);
      const [ok, limit, seen] = (await client.eval(
        ACQUIRE,
        2,
        store.key('toolrun', run),
        store.key('toolrate', rate, String(window)),
        String(now),
        n(limits.maxToolCalls),
        n(limits.maxRuntimeMs),
        n(limits.maxConcurrent),
        n(limits.perMinute),
        String(RUN_IDLE_MS),
      )) as [number, string, number];
      return ok === 1 ? { ok: true } : refusal(limit as ToolRunLimit, limits, seen);
    },
    async release(run) {
      await client.eval(RELEASE, 1, store.key('toolrun', run));
    },
  };
}
