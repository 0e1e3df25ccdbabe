// Shared by the routing tests: the part of a gateway config they all need
// (server, keys, audit) and small bounded waits. Each test file writes its own
// providers, models and routes so what it exercises is visible in the file.
import { hashKey } from '../../src/auth/keys.js';
import { ADMIN_KEY, APP_KEY, OTHER_KEY, type TestGateway } from './gateway.js';

export { ADMIN_KEY, APP_KEY, OTHER_KEY };

/** A whole config: the common sections plus `rest` (providers, models, routes). */
export function routingConfig(rest: string): string {
  return `
server:
  port: 0
  host: 127.0.0.1
  body_timeout_ms: 2000
  shutdown_grace_ms: 2000
logging:
  level: info
  access_log: true
auth:
  mode: keys
  admin_key_sha256: ${hashKey(ADMIN_KEY)}
keys:
  - { id: alpha, sha256: ${hashKey(APP_KEY)}, app: app-alpha, team: team-alpha, models: ["*"] }
  - { id: beta, sha256: ${hashKey(OTHER_KEY)}, app: app-beta, team: team-beta, models: ["*"] }
audit:
  sink: file
  dir: "{{dir}}/audit"
${rest}`;
}

/** An OpenAI-compatible provider pointing at `url`, with its settings inline. */
export function openaiProvider(url: string, settings = ''): string {
  return `{ type: openai, base_url: "${url}/v1", api_key: sk-upstream-test, requires_key: false${settings ? `, ${settings}` : ''} }`;
}

export interface ChatOptions {
  key?: string;
  headers?: Record<string, string>;
}

/** POST /v1/chat/completions with raw fetch, so headers and status are visible as sent. */
export function postChat(gw: TestGateway, body: Record<string, unknown>, o: ChatOptions = {}): Promise<Response> {
  return fetch(`${gw.baseURL}/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${o.key ?? APP_KEY}`, 'content-type': 'application/json', ...o.headers },
    body: JSON.stringify({ messages: [{ role: 'user', content: 'hi' }], ...body }),
  });
}

/** `key: null` sends no authorization header. */
export function adminGet(gw: TestGateway, path: string, key: string | null = ADMIN_KEY): Promise<Response> {
  return fetch(`${gw.url}${path}`, { headers: key ? { authorization: `Bearer ${key}` } : {} });
}

export function adminPost(gw: TestGateway, path: string): Promise<Response> {
  return fetch(`${gw.url}${path}`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN_KEY}` } });
}

/**
 * Polls until `probe` returns something other than undefined. The gateway
 * finishes a request (audit, SLO, metrics) after the response is sent, so a
 * client can read its answer before those exist.
 */
export async function waitFor<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, timeoutMs = 3000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export interface AuditAttempt {
  deployment: string;
  code?: string;
  status?: number;
  errorClass?: string;
  retry: number;
  fallback: boolean;
  degraded?: boolean;
}

export interface AuditRecordView {
  id: string;
  status: number;
  error_code: string | null;
  deployment: string | null;
  degraded: boolean;
  route: { name: string; rule: string | null; model: string } | null;
  attempts: AuditAttempt[];
}

/**
 * Waits (bounded) for a request's record. A stream that ended without usage is recorded once its delivered text is
 * counted, and a process's first count loads tiktoken on the event loop: seconds on a busy machine (9 s seen under
 * load), past the 3 s that is plenty for everything else.
 */
export function auditRecordFor(gw: TestGateway, requestId: string | null): Promise<AuditRecordView> {
  if (!requestId) throw new Error('response had no x-request-id');
  return waitFor(
    `the audit record of ${requestId}`,
    async () => {
      const found = (await gw.auditRecords()).find((r) => r.id === requestId);
      return found as AuditRecordView | undefined;
    },
    60_000,
  );
}

/** The value of one Prometheus sample, e.g. `lanegate_config_reloads_total{result="error"}`. */
export async function metricValue(gw: TestGateway, sample: string): Promise<number | undefined> {
  const text = await (await fetch(`${gw.url}/metrics`)).text();
  for (const line of text.split('\n')) {
    if (line.startsWith(`${sample} `)) return Number(line.slice(sample.length + 1));
  }
  return undefined;
}
