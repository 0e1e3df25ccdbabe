// Config, policies and helpers shared by the audit tests.
import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { requestRecordSchema, type AuditRequestRecord } from '../../src/audit/schema.js';
import { APP_KEY, defaultTestConfig, type TestGateway } from '../helpers/gateway.js';

/** One lane per body mode: green keeps full bodies, amber redacted ones, red hashes only. */
export const AUDIT_POLICIES = `
default_lane: green
tools:
  search: {}
  send_email: {}
lanes:
  green:
    rank: 10
    deployments: ["*"]
    cache: shared
    audit: { bodies: full, retention_days: 30 }
    detectors:
      api_key: block
      card: { action: escalate, lane: red }
  amber:
    rank: 20
    deployments: ["*"]
    audit: { bodies: redacted, retention_days: 90 }
    detectors:
      api_key: block
      email: redact
      phone: redact
    restore_redactions: true
  red:
    rank: 30
    deployments: ["*"]
    audit: { bodies: hash, retention_days: 365 }
    detectors:
      card: redact
      email: redact
    restore_redactions: true
`;

export interface AuditConfigOptions {
  openaiUrl?: string;
  /** The whole `audit:` section (default: file sink in {{dir}}/audit). */
  audit?: string;
  /** More top-level sections. */
  extra?: string;
  policies?: boolean;
}

export function auditTestConfig(o: AuditConfigOptions = {}): string {
  let yaml = defaultTestConfig({ openaiUrl: o.openaiUrl });
  const section = o.audit ?? 'audit:\n  sink: file\n  dir: {{dir}}/audit\n';
  yaml = yaml.replace(/^audit:\n(?: {2}.*\n)+/m, `${section.trimEnd()}\n`);
  if (o.policies !== false) yaml += '\npolicies: { dir: ./policies }\n';
  if (o.extra) yaml += `\n${o.extra}\n`;
  return yaml;
}

export const sha256 = (text: string | Buffer) => createHash('sha256').update(text).digest('hex');

export function postJson(gw: TestGateway, body: unknown, headers: Record<string, string> = {}, key = APP_KEY): Promise<Response> {
  return fetch(`${gw.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${key}`, ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

/** Polls until `probe` returns something other than undefined. */
export async function waitFor<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** The record of one request, read back from the files once the writer has it, and checked against the schema. */
export async function recordOf(gw: TestGateway, id: string | null): Promise<AuditRequestRecord> {
  if (!id) throw new Error('response had no x-request-id');
  const raw = await waitFor(`the audit record of ${id}`, async () => (await gw.auditRecords()).find((r) => r.id === id && r.kind === 'request'));
  const parsed = requestRecordSchema.safeParse(raw);
  if (!parsed.success) throw new Error(`the record of ${id} does not match the schema: ${JSON.stringify(parsed.error.issues)}`);
  return parsed.data;
}

/** The parts of a chat body or completion the tests read. */
export interface ChatBody {
  messages: Array<{ role: string; content: string }>;
}
export interface Completion {
  object: string;
  model: string;
  choices: Array<{ message: { content: string | null; tool_calls?: unknown[] }; finish_reason: string | null }>;
}
export interface ErrorBody {
  error: { message: string; code: string; param: string | null };
}

/** Raw lines of every record file in a folder, by file name. */
export async function auditLines(dir: string): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>();
  for (const name of (await readdir(dir)).filter((n) => n.endsWith('.jsonl')).sort()) {
    out.set(name, (await readFile(path.join(dir, name), 'utf8')).split('\n').filter(Boolean));
  }
  return out;
}

/** Sum of a metric's samples whose labels include `labels`. */
export async function metricSum(gw: TestGateway, name: string, labels: Record<string, string> = {}): Promise<number> {
  const text = await (await fetch(`${gw.url}/metrics`)).text();
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    const wanted = Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`));
    if (wanted) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

/** Reads an SSE answer into its content and raw events. */
export async function readSse(res: Response): Promise<{ content: string; events: unknown[] }> {
  const text = await res.text();
  const events: unknown[] = [];
  let content = '';
  for (const block of text.split('\n\n')) {
    // SSE comments (the stream's `: x-gateway-cost-usd=...` before [DONE]) are for parsers to skip.
    if (block.startsWith(':')) continue;
    const data = block.replace(/^data: /, '').trim();
    if (!data || data === '[DONE]') continue;
    const event = JSON.parse(data) as { choices?: Array<{ delta?: { content?: string } }> };
    events.push(event);
    for (const c of event.choices ?? []) content += c.delta?.content ?? '';
  }
  return { content, events };
}
