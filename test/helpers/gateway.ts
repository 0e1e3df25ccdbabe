// Starts the real gateway in this process, on a free port, from a config
// written to a temp folder, with its logs captured for assertions.
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import OpenAI from 'openai';
import { startGateway, type Gateway } from '../../src/gateway.js';
import { hashKey } from '../../src/auth/keys.js';

export const APP_KEY = 'sk-test-app-alpha-0123456789';
export const OTHER_KEY = 'sk-test-app-beta-9876543210';
export const ADMIN_KEY = 'sk-test-admin-5555555555';
export const UPSTREAM_SECRET = 'sk-upstream-secret-DO-NOT-LEAK-42';

export interface TestGateway {
  gateway: Gateway;
  url: string;
  baseURL: string;
  dir: string;
  configFile: string;
  logs(): string;
  client(key?: string, options?: { maxRetries?: number }): OpenAI;
  auditRecords(): Promise<Array<Record<string, unknown>>>;
  close(): Promise<void>;
}

export interface TestGatewayOptions {
  /** Upstream base URLs to wire into the default test config. */
  openaiUrl?: string;
  anthropicUrl?: string;
  /** Replaces the default config entirely. `{{dir}}` is the temp folder. */
  yaml?: string;
  /** Appended to (and so overriding) the default config's top-level sections. */
  extra?: string;
  env?: NodeJS.ProcessEnv;
  /** Reload when the config file changes. */
  watch?: boolean;
  /** Where the audit trail goes (default: the temp folder's audit/). */
  auditDir?: string;
  /** With policies: beta's key starts in (and is limited to) this lane. */
  betaLane?: string;
  /** Extra files to write into the temp folder first (e.g. policies/lanes.yaml). */
  files?: Record<string, string>;
}

export function defaultTestConfig(o: TestGatewayOptions): string {
  return `
server:
  port: 0
  host: 127.0.0.1
  body_limit_bytes: 65536
  max_json_depth: 32
  body_timeout_ms: 1500
  shutdown_grace_ms: 3000
logging:
  level: info
  access_log: true
auth:
  mode: keys
  admin_key_sha256: ${hashKey(ADMIN_KEY)}
keys:
  - { id: alpha, sha256: ${hashKey(APP_KEY)}, app: app-alpha, team: team-alpha, models: ["*"] }
  - { id: beta, sha256: ${hashKey(OTHER_KEY)}, app: app-beta, team: team-beta, models: [fast]${o.betaLane ? `, lane: ${o.betaLane}, lanes: [${o.betaLane}]` : ''} }
providers:
  mock: { type: mock }
  slowmock: { type: mock, latency_ms: 0, chunk_delay_ms: 200 }
  fakeopenai:
    type: openai
    base_url: ${o.openaiUrl ?? 'http://127.0.0.1:9'}/v1
    api_key: ${UPSTREAM_SECRET}
    timeouts: { connect_ms: 1000, first_byte_ms: 1500, total_ms: 5000 }
    # error-mapping tests need every fault to reach the client as it is
    retry: { max_retries: 0 }
    breaker: { enabled: false }
    rate_limit_cooldown: { max_ms: 0 }
  fakeanthropic:
    type: anthropic
    base_url: ${o.anthropicUrl ?? 'http://127.0.0.1:9'}
    api_key: ${UPSTREAM_SECRET}
    timeouts: { connect_ms: 1000, first_byte_ms: 1500, total_ms: 5000 }
    retry: { max_retries: 0 }
    breaker: { enabled: false }
  refused:
    type: openai
    base_url: http://127.0.0.1:9/v1
    api_key: unused
    timeouts: { connect_ms: 500, first_byte_ms: 1000, total_ms: 2000 }
    retry: { max_retries: 0 }
    breaker: { enabled: false }
models:
  fast: { deployments: [{ provider: mock, model: mock-fast }] }
  slow-stream: { deployments: [{ provider: slowmock, model: mock-slow }] }
  gpt-fake: { deployments: [{ provider: fakeopenai, model: gpt-4o-mini }] }
  claude-fake: { deployments: [{ provider: fakeanthropic, model: claude-3-5-haiku-latest }] }
  chain:
    deployments:
      - { provider: refused, model: gpt-4o-mini }
      - { provider: fakeopenai, model: gpt-4o-mini }
  embed-fake: { type: embedding, deployments: [{ provider: fakeopenai, model: text-embedding-3-small }] }
  embed-mock: { type: embedding, deployments: [{ provider: mock, model: mock-embed }] }
audit:
  sink: file
  dir: ${o.auditDir ?? '{{dir}}/audit'}
`;
}

export async function startTestGateway(options: TestGatewayOptions = {}): Promise<TestGateway> {
  const dir = await mkdtemp(path.join(tmpdir(), 'lanegate-test-'));
  const yaml = (options.yaml ?? defaultTestConfig(options) + (options.extra ?? '')).replaceAll('{{dir}}', dir);
  for (const [name, text] of Object.entries(options.files ?? {})) {
    await mkdir(path.dirname(path.join(dir, name)), { recursive: true });
    await writeFile(path.join(dir, name), text.replaceAll('{{dir}}', dir));
  }
  const configFile = path.join(dir, 'gateway.yaml');
  await writeFile(configFile, yaml);
  let logText = '';
  const destination = new Writable({
    write(chunk, _enc, cb) {
      logText += chunk.toString();
      cb();
    },
  });
  const gateway = await startGateway({
    configFile,
    env: options.env ?? {},
    port: 0,
    host: '127.0.0.1',
    logDestination: destination,
    watch: options.watch ?? false,
  });
  return {
    gateway,
    url: gateway.url,
    baseURL: `${gateway.url}/v1`,
    dir,
    configFile,
    logs: () => logText,
    client: (key = APP_KEY, o = {}) => new OpenAI({ apiKey: key, baseURL: `${gateway.url}/v1`, maxRetries: o.maxRetries ?? 0 }),
    async auditRecords() {
      await gateway.audit.flush();
      const auditDir = options.auditDir ?? path.join(dir, 'audit');
      // Record files only: the sink keeps an index (.idx) beside each.
      const files = (await readdir(auditDir).catch(() => [] as string[])).filter((f) => f.endsWith('.jsonl')).sort();
      const records: Array<Record<string, unknown>> = [];
      for (const f of files) {
        for (const line of (await readFile(path.join(auditDir, f), 'utf8')).split('\n')) if (line) records.push(JSON.parse(line));
      }
      return records;
    },
    async close() {
      await gateway.shutdown();
      // Retried: another replica of a test may still be finishing a write into this folder.
      await rm(dir, { recursive: true, force: true, maxRetries: 5 });
    },
  };
}
