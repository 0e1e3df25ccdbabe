// Config, policies and small request helpers shared by the cache tests.
import { hashKey } from '../../src/auth/keys.js';
import { startFakeOpenAI, type FakeOpenAI } from '../helpers/fake-openai.js';
import { APP_KEY, defaultTestConfig, startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';

/** A second key in alpha's team (alpha: team-alpha, beta: team-beta). */
export const GAMMA_KEY = 'sk-test-app-gamma-1111111111';

/** One lane per cache scope; requests pick a stricter one with x-gateway-lane. */
export const CACHE_POLICIES = `
default_lane: shared
tools:
  send_email: {}
  search: {}
lanes:
  shared: { rank: 10, cache: shared, tools: { require_approval: [send_email] } }
  team: { rank: 20, cache: team }
  key: { rank: 30, cache: key }
  off: { rank: 40, cache: off }
  redacting:
    rank: 50
    cache: shared
    detectors: { email: redact }
    restore_redactions: true
`;

export interface CacheConfigOptions {
  openaiUrl: string;
  redisUrl?: string;
  /** Replaces the default `cache:` section. */
  cache?: string;
}

/**
 * The default test config with: beta allowed every model, a third key
 * (gamma, alpha's team), models with their own cache rules, the policies
 * above, and Redis when given.
 */
export function cacheTestConfig(o: CacheConfigOptions): string {
  let yaml = defaultTestConfig({ openaiUrl: o.openaiUrl });
  yaml = yaml.replace('models: [fast]', 'models: ["*"]');
  yaml = yaml.replace(/^keys:\n/m, `keys:\n  - { id: gamma, sha256: ${hashKey(GAMMA_KEY)}, app: app-gamma, team: team-alpha, models: ["*"] }\n`);
  yaml = yaml.replace(
    /^models:\n/m,
    `models:
  gpt-loose: { deployments: [{ provider: fakeopenai, model: gpt-4o-mini }], cache: { allow_nondeterministic: true } }
  gpt-nocache: { deployments: [{ provider: fakeopenai, model: gpt-4o-mini }], cache: { enabled: false } }
`,
  );
  yaml += `
policies: { dir: ./policies }
routes:
  cached-route:
    cache: { ttl_seconds: 1 }
    rules: [{ name: all, default: true, model: gpt-fake }]
${o.cache ?? 'cache: { single_flight_timeout_ms: 5000 }'}
`;
  if (o.redisUrl) yaml += `redis: { url: "${o.redisUrl}", key_prefix: cache-test }\n`;
  return yaml;
}

export interface RawReply {
  status: number;
  headers: Headers;
  body: Record<string, unknown>;
  text: string;
}

export async function post(gw: TestGateway, path: string, body: unknown, headers: Record<string, string> = {}, key = APP_KEY): Promise<RawReply> {
  const res = await fetch(`${gw.baseURL}${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  let parsed: Record<string, unknown> = {};
  try {
    parsed = JSON.parse(text) as Record<string, unknown>;
  } catch {
    // SSE bodies are parsed by the caller.
  }
  return { status: res.status, headers: res.headers, body: parsed, text };
}

/** A deterministic chat request (temperature 0), so it is cacheable by default. */
export function chat(content: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { model: 'gpt-fake', temperature: 0, messages: [{ role: 'user', content }], ...extra };
}

/** The `data:` payloads of an SSE body, [DONE] excluded. */
export function sseEvents(text: string): Array<Record<string, unknown>> {
  return text
    .split('\n\n')
    .map((block) => block.trim())
    .filter((block) => block.startsWith('data: ') && block !== 'data: [DONE]')
    .map((block) => JSON.parse(block.slice(6)) as Record<string, unknown>);
}

/** Sums a counter's samples whose labels include all of `labels`. */
export async function metricSum(gw: TestGateway, name: string, labels: Record<string, string> = {}): Promise<number> {
  const metric = gw.gateway.metrics.registry.getSingleMetric(name);
  if (!metric) return 0;
  const { values } = await metric.get();
  return values.filter((v) => Object.entries(labels).every(([k, want]) => v.labels[k] === want)).reduce((n, v) => n + v.value, 0);
}

export async function waitFor(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** What most cache tests run against: a fake upstream, a private Redis and the gateway on both. */
export interface CacheRig {
  upstream: FakeOpenAI;
  redis: TestRedis;
  gw: TestGateway;
}

export async function startCacheRig(): Promise<CacheRig> {
  const upstream = await startFakeOpenAI();
  const redis = await startRedis();
  const gw = await startTestGateway({ yaml: cacheTestConfig({ openaiUrl: upstream.url, redisUrl: redis.url }), files: { 'policies/lanes.yaml': CACHE_POLICIES } });
  return { upstream, redis, gw };
}

export async function stopCacheRig(rig: CacheRig): Promise<void> {
  await rig.gw.close();
  await rig.upstream.close();
  await rig.redis.stop();
}

/** Runs a request that should store a cache entry, and waits until the store has it. */
export async function storedEntry<T>(gw: TestGateway, fn: () => Promise<T>, labels: Record<string, string> = {}): Promise<T> {
  const bytes = await metricSum(gw, 'lanegate_cache_stored_bytes_total', labels);
  const result = await fn();
  await waitFor('the entry to be stored', async () => (await metricSum(gw, 'lanegate_cache_stored_bytes_total', labels)) > bytes);
  return result;
}
