// Two gateway processes on one Redis, each with its own ledger, and Redis
// losing everything (FLUSHALL): no budgeted request may overspend. Before,
// the first replica to notice rebuilt the counters from its own folder only
// and both went on spending from that partial sum.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { startFakeOpenAI, type FakeOpenAI } from '../helpers/fake-openai.js';
import { ADMIN_KEY, APP_KEY, OTHER_KEY, defaultTestConfig } from '../helpers/gateway.js';
import { spawnGateway, type GatewayProcess } from '../helpers/gateway-process.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';

const run = promisify(execFile);
const root = path.resolve(import.meta.dirname, '../..');
const LIMIT_USD = 1;
// team-beta has only a rate limit (no day or month budget), like the shipped dev key's dev-rpm.
const BETA_RPM = 4;

// A cent per token: an answer of the fake upstream costs about $0.15; the
// budget is one dollar for team-alpha per day.
const extra = (redisUrl: string, prefix: string) => `
redis: { url: "${redisUrl}", key_prefix: ${prefix} }
pricing:
  gpt-4o-mini: { input: 10000, output: 10000, max_output_tokens: 50 }
budgets:
  rules:
    - { name: team-daily, scope: team, match: [team-alpha], period: day, usd: ${LIMIT_USD} }
rate_limits:
  - { name: beta-rpm, scope: team, match: [team-beta], requests_per_minute: ${BETA_RPM} }
`;

interface Replica {
  dir: string;
  configFile: string;
  gw: GatewayProcess;
}

async function writeReplica(yaml: string): Promise<Omit<Replica, 'gw'>> {
  const dir = await mkdtemp(path.join(tmpdir(), 'lanegate-replica-'));
  const configFile = path.join(dir, 'gateway.yaml');
  await writeFile(configFile, yaml.replaceAll('{{dir}}', dir));
  return { dir, configFile };
}

const ask = (gw: GatewayProcess) =>
  fetch(`${gw.baseURL}/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${APP_KEY}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'gpt-fake', max_tokens: 10, messages: [{ role: "user", content: "one two three" }] }),
  });

const askBeta = (gw: GatewayProcess) =>
  fetch(`${gw.baseURL}/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${OTHER_KEY}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'fast', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] }),
  });

async function spentUsd(gw: GatewayProcess): Promise<{ usd: number; reserved: number }> {
  const res = await fetch(`${gw.url}/admin/budgets`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } });
  const row = ((await res.json()) as { data: Array<{ name: string; spent: { usd: number }; reserved: { usd: number } }> }).data.find((r) => r.name === 'team-daily')!;
  return { usd: row.spent.usd, reserved: row.reserved.usd };
}

/** team-alpha's cost in a replica's audit folder, once `count` answered requests are on disk. */
async function folderSpend(dir: string, count: number): Promise<number> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const files = (await readdir(path.join(dir, 'audit'), { recursive: true }).catch(() => [] as string[])).filter((f) => f.endsWith('.jsonl'));
    let n = 0;
    let nano = 0;
    for (const f of files) {
      for (const line of (await readFile(path.join(dir, 'audit', f), 'utf8')).split('\n')) {
        if (!line) continue;
        const r = JSON.parse(line) as { kind?: string; team?: string; cost?: { nano_usd: number } | null };
        if (r.kind === 'request' && r.team === 'team-alpha' && r.cost) {
          n++;
          nano += r.cost.nano_usd;
        }
      }
    }
    if (n >= count) return nano;
    if (Date.now() > deadline) throw new Error(`${dir}: ${n} of ${count} records on disk`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function expectUnavailable(gw: GatewayProcess, upstream: FakeOpenAI): Promise<void> {
  const calls = upstream.calls.length;
  const res = await ask(gw);
  const body = (await res.json()) as { error: { code: string; message: string } };
  assert.equal(res.status, 503, JSON.stringify(body));
  assert.equal(body.error.code, 'budget_unavailable');
  assert.equal(res.headers.get('x-should-retry'), 'true');
  assert.ok(Number(res.headers.get('retry-after')) > 0);
  assert.equal(upstream.calls.length, calls, 'nothing went upstream');
}

async function rebuild(configFile: string, args: string[]): Promise<{ code: number; out: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [path.join(root, 'bin/lanegate.mjs'), 'budgets', 'rebuild', '--config', configFile, ...args], { cwd: root, timeout: 60_000 });
    return { code: 0, out: stdout + stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: e.code ?? -1, out: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
}

/** Asks alternately on both replicas until the budget refuses; returns how many were answered. */
async function spendUntilRefused(replicas: Replica[]): Promise<number> {
  for (let i = 0; i < 20; i++) {
    const res = await ask(replicas[i % 2]!.gw);
    await res.arrayBuffer();
    if (res.status === 429) return i;
    assert.equal(res.status, 200);
  }
  throw new Error('the budget never refused');
}

async function metric(gw: GatewayProcess, name: string): Promise<number> {
  const text = await (await fetch(`${gw.url}/metrics`)).text();
  const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : Number.NaN;
}

interface TwoReplicas {
  redis: TestRedis;
  raw: Redis;
  upstream: FakeOpenAI;
  replicas: Replica[];
}

/** Two gateway processes on one Redis, each with its own audit folder (file sink) or both on the Redis Streams sink. */
function twoReplicas(sink: 'file' | 'redis', prefix: string): TwoReplicas {
  const env = { replicas: [] as Replica[] } as TwoReplicas;
  before(async () => {
    env.redis = await startRedis();
    env.raw = new Redis(env.redis.url);
    env.upstream = await startFakeOpenAI();
    for (let i = 0; i < 2; i++) {
      let yaml = defaultTestConfig({ openaiUrl: env.upstream.url });
      if (sink === 'redis') {
        yaml = yaml.replace(/^audit:\n {2}sink: file\n/m, 'audit:\n  sink: redis\n');
        assert.match(yaml, /sink: redis/);
      }
      const files = await writeReplica(yaml + extra(env.redis.url, prefix));
      env.replicas.push({ ...files, gw: await spawnGateway(files.configFile) });
    }
  });
  after(async () => {
    for (const r of env.replicas) {
      await r.gw.stop();
      await rm(r.dir, { recursive: true, force: true });
    }
    env.raw.disconnect();
    await env.upstream.close();
    await env.redis.stop();
  });
  return env;
}

describe('budgets after Redis loses its data – two gateway processes, one audit folder each', () => {
  const env = twoReplicas('file', 'loss-files');

  it('budgets – budgeted requests get 503 budget_unavailable until an operator rebuilds from every folder, then the full spend counts', async () => {
    const [a, b] = env.replicas as [Replica, Replica];
    for (const r of [a, a, b, b]) assert.equal((await ask(r.gw)).status, 200);
    const spentA = await folderSpend(a.dir, 2);
    const spentB = await folderSpend(b.dir, 2);
    const before = await spentUsd(a.gw);
    assert.equal(Math.round(before.usd * 1e9), spentA + spentB, 'both replicas spent into one counter');

    await env.raw.flushall(); // Redis restarted without persistence: counters, marker, everything

    await expectUnavailable(a.gw, env.upstream);
    await expectUnavailable(b.gw, env.upstream);
    // A replica that restarts meanwhile remembers the epoch it knew (and the loss is recorded in Redis).
    await b.gw.kill();
    b.gw = await spawnGateway(b.configFile);
    await expectUnavailable(b.gw, env.upstream);
    assert.match(a.gw.logs(), /"level":"error"[^\n]*budget counters lost[^\n]*lanegate budgets rebuild/);
    assert.equal(await metric(a.gw, 'lanegate_budget_counters_lost'), 1);
    assert.ok((await metric(a.gw, 'lanegate_budget_unavailable_total')) >= 1);

    // A folder that is not an audit folder is refused, so a typo cannot pass for a replica without spend.
    const typo = await rebuild(a.configFile, ['--ledger', path.join(a.dir, 'audit'), '--ledger', path.join(b.dir, 'nothing-here')]);
    assert.equal(typo.code, 2, typo.out);
    await expectUnavailable(a.gw, env.upstream);

    const done = await rebuild(a.configFile, ['--ledger', path.join(a.dir, 'audit'), '--ledger', path.join(b.dir, 'audit')]);
    assert.equal(done.code, 0, done.out);
    assert.match(done.out, /Total \$/);
    const restored = await spentUsd(b.gw);
    assert.equal(Math.round(restored.usd * 1e9), spentA + spentB, `restored ${restored.usd}, the replicas spent ${(spentA + spentB) / 1e9}`);

    const answered = await spendUntilRefused(env.replicas);
    assert.ok(answered > 0, 'budget left after the rebuild is usable');
    const final = await spentUsd(a.gw);
    assert.equal(final.reserved, 0);
    assert.ok(final.usd <= LIMIT_USD, `spent ${final.usd} of ${LIMIT_USD}`);
    // spendUntilRefused alternates, starting with a.
    const total = (await folderSpend(a.dir, 2 + Math.ceil(answered / 2))) + (await folderSpend(b.dir, 2 + Math.floor(answered / 2)));
    assert.equal(total, Math.round(final.usd * 1e9), 'the counter is the sum of both ledgers');
    assert.ok(total <= LIMIT_USD * 1e9, `the ledgers say ${total / 1e9} USD were spent`);
    // A replica sees the rebuild at its next look at the marker (every 5 s, or sooner on a refusal).
    const seenBy = Date.now() + 15_000;
    while (Date.now() < seenBy && (await metric(a.gw, 'lanegate_budget_counters_lost')) !== 0) await sleep(200);
    assert.equal(await metric(a.gw, 'lanegate_budget_counters_lost'), 0);
    assert.match(a.gw.logs(), /budget counters restored/);
  });

  it('rate limits – a request with only a rate limit is answered during the loss, its minute counted again from zero', async () => {
    const [a, b] = env.replicas as [Replica, Replica];
    await env.raw.flushall();
    await expectUnavailable(a.gw, env.upstream);
    assert.equal(await metric(a.gw, 'lanegate_budget_counters_lost'), 1, 'the loss is recorded');
    // Losing a minute's window lets through at most one minute's worth: no reason for an outage.
    const statuses: number[] = [];
    for (let i = 0; i < BETA_RPM + 2; i++) {
      const res = await askBeta((i % 2 === 0 ? a : b).gw);
      await res.arrayBuffer();
      statuses.push(res.status);
    }
    assert.deepEqual(statuses, [...Array(BETA_RPM).fill(200), 429, 429], 'admitted up to the limit, across both replicas, then rate limited');
    // The day budget still waits for the operator.
    await expectUnavailable(b.gw, env.upstream);
  });
});

describe('budgets after Redis loses its data – two gateway processes, Redis Streams audit sink', () => {
  const env = twoReplicas('redis', 'loss-streams');

  it('budgets – with the streams gone too, budgeted requests stay refused until an operator waives the lost spend', async () => {
    const [a, b] = env.replicas as [Replica, Replica];
    for (const r of [a, b, a, b]) assert.equal((await ask(r.gw)).status, 200);
    assert.ok((await spentUsd(a.gw)).usd > 0);

    await env.raw.flushall(); // the streams holding every replica's records are gone with the counters

    await expectUnavailable(a.gw, env.upstream);
    await expectUnavailable(b.gw, env.upstream);
    await b.gw.kill();
    b.gw = await spawnGateway(b.configFile);
    await expectUnavailable(b.gw, env.upstream);
    await expectUnavailable(a.gw, env.upstream);

    // The streams hold only what came after the loss (the refusals' records): no rebuild from them.
    const refused = await rebuild(a.configFile, []);
    assert.equal(refused.code, 1, refused.out);
    assert.match(refused.out, /do not hold the whole month/);
    await expectUnavailable(a.gw, env.upstream);
    await expectUnavailable(b.gw, env.upstream);

    const waived = await rebuild(a.configFile, ['--waive', 'test: streams lost with Redis']);
    assert.equal(waived.code, 0, waived.out);
    const marker = JSON.parse((await env.raw.get('loss-streams:v1:budget:seeded'))!) as { by: string; waived: string };
    assert.equal(marker.by, 'rebuild');
    assert.equal(marker.waived, 'test: streams lost with Redis');
    assert.equal((await ask(b.gw)).status, 200);
    assert.equal((await ask(a.gw)).status, 200);
    // Every replica logs the operator's decision when it joins the new epoch.
    const deadline = Date.now() + 10_000;
    while (!/budget counters restored[^\n]*test: streams lost|test: streams lost[^\n]*budget counters restored/.test(a.gw.logs()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    assert.match(a.gw.logs(), /budget counters restored/);
    assert.match(a.gw.logs(), /"waived":"test: streams lost with Redis"/);
  });
});
