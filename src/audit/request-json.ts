// The request record, written as JSON by hand. A request record is the one
// record written on every request, and JSON.stringify walking its ~70
// members key by key was the audit trail's largest cost (~9 µs of ~45 per
// record under load). Its shape is fixed by the schema, so the line is one
// template: short strings that need no escaping are quoted as they are,
// numbers printed as JSON prints them, and the parts whose shape varies
// (findings, tool calls) still go through JSON.stringify, and only when they
// hold something; attempts and the cache decision are written member by
// member in the order their builders give them.
//
// The output is byte for byte what JSON.stringify writes for the same record
// (test/audit/request-json.test.ts checks it, and that every member of the
// schema is written), so lines written before and after read the same.
import { bool, num, numOrNull, str, strOrNull } from '../json-text.js';
import { bodiesJson } from './raw-json.js';
import type { AuditRequestRecord } from './schema.js';

function strings(list: readonly string[]): string {
  if (list.length === 0) return '[]';
  let out = `[${str(list[0]!)}`;
  for (let i = 1; i < list.length; i++) out += `,${str(list[i]!)}`;
  return `${out}]`;
}

/** An attempt, members in the order dispatch.ts's recordAttempt gives them, absent ones left out. */
function attempt(a: AuditRequestRecord['attempts'][number]): string {
  let out = `{"deployment":${str(a.deployment)},"provider":${str(a.provider)}`;
  if (a.startMs !== undefined) out += `,"startMs":${num(a.startMs)}`;
  out += `,"latencyMs":${num(a.latencyMs)},"retry":${num(a.retry)},"fallback":${bool(a.fallback)}`;
  if (a.degraded !== undefined) out += `,"degraded":${bool(a.degraded)}`;
  if (a.code !== undefined) out += `,"code":${str(a.code)}`;
  if (a.errorClass !== undefined) out += `,"errorClass":${str(a.errorClass)}`;
  if (a.status !== undefined) out += `,"status":${num(a.status)}`;
  return `${out}}`;
}

function attempts(list: AuditRequestRecord['attempts']): string {
  if (list.length === 0) return '[]';
  let out = `[${attempt(list[0]!)}`;
  for (let i = 1; i < list.length; i++) out += `,${attempt(list[i]!)}`;
  return `${out}]`;
}

/** The cache decision, members in the order record.ts's cacheOf gives them. */
function cache(c: NonNullable<AuditRequestRecord['cache']>): string {
  let out = `{"status":${str(c.status)}`;
  if (c.reason !== undefined) out += `,"reason":${str(c.reason)}`;
  if (c.scope !== undefined) out += `,"scope":${str(c.scope)}`;
  if (c.key !== undefined) out += `,"key":${str(c.key)}`;
  if (c.age !== undefined) out += `,"age":${num(c.age)}`;
  if (c.items !== undefined) out += `,"items":{"hits":${num(c.items.hits)},"total":${num(c.items.total)}}`;
  return `${out}}`;
}

/** Arrays of objects whose members vary: JSON.stringify, skipped when empty. */
function list(value: readonly unknown[]): string {
  return value.length === 0 ? '[]' : JSON.stringify(value);
}

/** The members of a request record, in the order they are written (bodies last, see raw-json.ts). */
export const REQUEST_RECORD_MEMBERS = [
  'v', 'kind', 'id', 'time', 'endpoint', 'api', 'key_id', 'app', 'team', 'model', 'lane', 'policy', 'prompt', 'route',
  'deployment', 'provider', 'response_model', 'degraded', 'stream', 'status', 'error_code', 'attempts', 'cache',
  'usage', 'cost', 'budgets', 'tools', 'timings', 'client_disconnected', 'trace_id', 'span_id', 'run_id', 'client', 'bodies',
] as const;

function cacheUsage(u: NonNullable<AuditRequestRecord['usage']>): string {
  return u.cache_read_tokens === undefined ? '' : `,"cache_read_tokens":${num(u.cache_read_tokens)},"cache_write_tokens":${num(u.cache_write_tokens ?? 0)}`;
}

/** A request record (without prev/hash) as one line of JSON; bodies go in as raw-json.ts writes them. */
export function requestRecordJson(r: AuditRequestRecord): string {
  const lane = r.lane;
  const policy = r.policy;
  const prompt = r.prompt;
  const route = r.route;
  const usage = r.usage;
  const cost = r.cost;
  const t = r.timings;
  return (
    `{"v":${num(r.v)},"kind":"request","id":${str(r.id)},"time":${str(r.time)},"endpoint":${str(r.endpoint)}` +
    (r.api ? `,"api":{"shape":${str(r.api.shape)},"upstream":${strOrNull(r.api.upstream)}}` : '') +
    `,"key_id":${strOrNull(r.key_id)},"app":${strOrNull(r.app)},"team":${strOrNull(r.team)},"model":${strOrNull(r.model)}` +
    `,"lane":${lane ? `{"name":${str(lane.name)},"reasons":${strings(lane.reasons)},"bodies":${str(lane.bodies)},"retention_days":${num(lane.retention_days)}}` : 'null'}` +
    `,"policy":${
      policy
        ? `{"findings":${list(policy.findings)},"redactions":${num(policy.redactions)},"stripped_tools":${strings(policy.stripped_tools)},"blocked_tool_calls":${list(policy.blocked_tool_calls)},"approvals":${list(policy.approvals)}}`
        : 'null'
    }` +
    `,"prompt":${prompt ? `{"template":${str(prompt.template)},"version":${strOrNull(prompt.version)}}` : 'null'}` +
    `,"route":${route ? `{"name":${str(route.name)},"rule":${strOrNull(route.rule)},"model":${str(route.model)}}` : 'null'}` +
    `,"deployment":${strOrNull(r.deployment)},"provider":${strOrNull(r.provider)},"response_model":${strOrNull(r.response_model)}` +
    `,"degraded":${bool(r.degraded)},"stream":${bool(r.stream)},"status":${num(r.status)},"error_code":${strOrNull(r.error_code)}` +
    `,"attempts":${attempts(r.attempts)},"cache":${r.cache ? cache(r.cache) : 'null'}` +
    `,"usage":${usage ? `{"prompt_tokens":${num(usage.prompt_tokens)},"completion_tokens":${num(usage.completion_tokens)},"total_tokens":${num(usage.total_tokens)}${cacheUsage(usage)}}` : 'null'}` +
    `,"cost":${cost ? `{"usd":${num(cost.usd)},"nano_usd":${num(cost.nano_usd)},"priced":${bool(cost.priced)}}` : 'null'}` +
    `,"budgets":${strings(r.budgets)},"tools":{"offered":${strings(r.tools.offered)},"called":${list(r.tools.called)}}` +
    `,"timings":{"queue_ms":${numOrNull(t.queue_ms)},"first_byte_ms":${numOrNull(t.first_byte_ms)},"total_ms":${numOrNull(t.total_ms)}}` +
    `,"client_disconnected":${bool(r.client_disconnected)},"trace_id":${strOrNull(r.trace_id)},"span_id":${strOrNull(r.span_id)}${r.run_id === undefined ? '' : `,"run_id":${strOrNull(r.run_id)}`}` +
    (r.client !== undefined ? `,"client":${str(r.client)}` : '') +
    `,"bodies":${bodiesJson(r.bodies as unknown as Record<string, unknown>)}}`
  );
}
