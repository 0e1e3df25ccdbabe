// The request record, written as JSON by hand. A request record is the one
// record written on every request, and JSON.stringify walking its ~70
// members key by key was the audit trail's largest cost (~9 µs of ~45 per
// record under load). Its shape is fixed by the schema, so the line is one
// template: short strings that need no escaping are quoted as they are,
// numbers printed as JSON prints them, and the parts whose shape varies
// (attempts, findings, tool calls, the cache decision) still go through
// JSON.stringify, and only when they hold something.
//
// The output is byte for byte what JSON.stringify writes for the same record
// (test/audit/request-json.test.ts checks it, and that every member of the
// schema is written), so lines written before and after read the same.
import { bodiesJson } from './raw-json.js';
import type { AuditRequestRecord } from './schema.js';

/** Characters JSON.stringify escapes: quote, backslash, controls, and surrogates (a lone one is escaped). */
const NEEDS_ESCAPE = /["\\\u0000-\u001f\ud800-\udfff]/;

function str(s: string): string {
  return NEEDS_ESCAPE.test(s) ? JSON.stringify(s) : `"${s}"`;
}

function strOrNull(s: string | null | undefined): string {
  return s === null || s === undefined ? 'null' : str(s);
}

/** JSON.stringify's number: non-finite numbers are null. */
function num(n: number): string {
  return Number.isFinite(n) ? String(n) : 'null';
}

/** Typed as boolean, and never written as anything but true or false. */
function bool(b: boolean): string {
  return b === true ? 'true' : 'false';
}

function numOrNull(n: number | null | undefined): string {
  return n === null || n === undefined ? 'null' : num(n);
}

function strings(list: readonly string[]): string {
  if (list.length === 0) return '[]';
  let out = `[${str(list[0]!)}`;
  for (let i = 1; i < list.length; i++) out += `,${str(list[i]!)}`;
  return `${out}]`;
}

/** Arrays of objects whose members vary: JSON.stringify, skipped when empty. */
function list(value: readonly unknown[]): string {
  return value.length === 0 ? '[]' : JSON.stringify(value);
}

/** The members of a request record, in the order they are written (bodies last, see raw-json.ts). */
export const REQUEST_RECORD_MEMBERS = [
  'v', 'kind', 'id', 'time', 'endpoint', 'key_id', 'app', 'team', 'model', 'lane', 'policy', 'prompt', 'route',
  'deployment', 'provider', 'response_model', 'degraded', 'stream', 'status', 'error_code', 'attempts', 'cache',
  'usage', 'cost', 'budgets', 'tools', 'timings', 'client_disconnected', 'trace_id', 'bodies',
] as const;

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
    `,"attempts":${list(r.attempts)},"cache":${r.cache ? JSON.stringify(r.cache) : 'null'}` +
    `,"usage":${usage ? `{"prompt_tokens":${num(usage.prompt_tokens)},"completion_tokens":${num(usage.completion_tokens)},"total_tokens":${num(usage.total_tokens)}}` : 'null'}` +
    `,"cost":${cost ? `{"usd":${num(cost.usd)},"nano_usd":${num(cost.nano_usd)},"priced":${bool(cost.priced)}}` : 'null'}` +
    `,"budgets":${strings(r.budgets)},"tools":{"offered":${strings(r.tools.offered)},"called":${list(r.tools.called)}}` +
    `,"timings":{"queue_ms":${numOrNull(t.queue_ms)},"first_byte_ms":${numOrNull(t.first_byte_ms)},"total_ms":${numOrNull(t.total_ms)}}` +
    `,"client_disconnected":${bool(r.client_disconnected)},"trace_id":${strOrNull(r.trace_id)}` +
    `,"bodies":${bodiesJson(r.bodies as unknown as Record<string, unknown>)}}`
  );
}
