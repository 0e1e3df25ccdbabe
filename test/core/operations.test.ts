// What an operator meets around the API: the CLI's reports and errors, config
// checks, hot reload, request ids on every answer and a calm start-up log.
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { startRedis } from '../helpers/redis.js';
import { ADMIN_KEY, defaultTestConfig, startTestGateway, type TestGateway } from '../helpers/gateway.js';

const run = promisify(execFile);
const root = path.resolve(import.meta.dirname, '../..');
const cli = path.join(root, 'bin/lanegate.mjs');

/** Runs the real CLI; resolves with its exit code and output whether it failed or not. */
async function lanegate(args: string[], options: { env?: NodeJS.ProcessEnv } = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [cli, ...args], { cwd: root, timeout: 60_000, env: { ...process.env, ...options.env } });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

describe('lanegate costs', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startTestGateway();
    await gw.client().chat.completions.create({ model: 'fast', messages: [{ role: 'user', content: 'hello' }] });
    await gw.gateway.audit.flush();
  });
  after(() => gw.close());

  it('costs – --to names a day and includes it: --to <today> counts the request made just now', async () => {
    const today = new Date().toISOString().slice(0, 10);
    const { code, stdout, stderr } = await lanegate(['costs', '--config', gw.configFile, '--by', 'key', '--to', today, '--csv']);
    assert.equal(code, 0, stderr);
    assert.match(stdout, /^alpha,1,/m);
    assert.match(stdout, /^total,1,/m);
  });

  it('costs – an unknown --by is an error naming the choices, as group_by is in /admin/usage', async () => {
    const { code, stdout, stderr } = await lanegate(['costs', '--config', gw.configFile, '--by', 'colour']);
    assert.equal(code, 2);
    assert.equal(stdout, '');
    assert.match(stderr, /--by must be one of team, app, key, model, provider, lane/);
    const usage = await fetch(`${gw.url}/admin/usage?group_by=colour`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } });
    assert.equal(usage.status, 400);
  });

  it('costs – --help prints the command\'s help and reads no ledger (a missing config is not even looked for)', async () => {
    for (const command of ['costs', 'serve', 'check-config', 'explain', 'audit', 'budgets', 'eval', 'promote']) {
      const { code, stdout, stderr } = await lanegate([command, '--help', '--config', '/nonexistent/gateway.yaml']);
      assert.equal(code, 0, `${command} --help: ${stderr}`);
      assert.match(stdout, /^Usage:/, command);
      assert.ok(stdout.includes(command), command);
    }
    const { stdout } = await lanegate(['costs', '--help']);
    assert.match(stdout, /--to includes the day it names/);
  });
});

describe('lanegate check-config', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'lanegate-check-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('check-config – schema and cross-reference problems (provider, lane, tool) in one run', async () => {
    await mkdir(path.join(dir, 'policies'), { recursive: true });
    await writeFile(
      path.join(dir, 'policies/lanes.yaml'),
      `default_lane: green
tools:
  search_docs: { description: Searches the docs. }
lanes:
  green:
    rank: 10
    deployments: ["*"]
    tools: { allow: [launch_missiles] }
`,
    );
    const file = path.join(dir, 'gateway.yaml');
    await writeFile(
      file,
      `server: { port: 99999 }
auth: { mode: none }
keys:
  - { id: a, sha256: "${'0'.repeat(64)}", app: x, team: y, lane: purple }
providers:
  p1: { type: mock }
  p2: { type: openai, base_url: not-a-url }
models:
  m1: { deployments: [{ provider: nope, model: x }] }
  m2: { deployments: [{ provider: p2, model: x }] }
policies: { dir: ./policies }
`,
    );
    const { code, stdout, stderr } = await lanegate(['check-config', '--config', file]);
    assert.equal(code, 1, stdout);
    assert.match(stderr, /server\.port: Too big/);
    assert.match(stderr, /providers\.p2\.base_url: expected an http\(s\) URL/);
    assert.match(stderr, /models\.m1\.deployments\[0\]\.provider: unknown provider "nope"/);
    assert.match(stderr, /keys\[0\]\.lane: unknown lane "purple"/);
    assert.match(stderr, /lanes\.green\.tools\.allow\[0\]: unknown tool "launch_missiles"/);
    // p2 is set aside for its bad URL: m2 naming it is no second problem.
    assert.doesNotMatch(stderr, /unknown provider "p2"/);
    assert.match(stderr, /Invalid configuration \(5 problems\)/);
    assert.ok(!stderr.includes('    at '), `no stack trace:\n${stderr}`);
  });

  it('check-config – a YAML syntax error shows the offending line with a caret under it', async () => {
    const file = path.join(dir, 'broken.yaml');
    await writeFile(file, 'server:\n  port: 8080\nmodels: [fast, smart\nkeys: []\n');
    const { code, stderr } = await lanegate(['check-config', '--config', file]);
    assert.equal(code, 1);
    assert.match(stderr, /YAML syntax: .*at line 4, column 1/);
    const lines = stderr.split('\n');
    const shown = lines.findIndex((l) => l.includes('| keys: []'));
    assert.ok(shown > 0, stderr);
    assert.match(lines[shown + 1]!, /\|\s*\^/);
  });
});

describe('hot reload', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startTestGateway();
  });
  after(() => gw.close());

  it('reload – restart-only settings (port, host, audit dir and sink, Redis URL) are named in a warning and in the answer, and keep their running values', async () => {
    const edited = defaultTestConfig({})
      .replace('port: 0', 'port: 18999')
      .replace('host: 127.0.0.1', 'host: 0.0.0.0')
      .replace('sink: file', 'sink: redis')
      .replace("dir: {{dir}}/audit", 'dir: {{dir}}/elsewhere')
      .concat('redis: { url: "redis://127.0.0.1:1" }\n')
      .replaceAll('{{dir}}', gw.dir);
    await writeFile(gw.configFile, edited);
    const res = await fetch(`${gw.url}/admin/reload`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN_KEY}` } });
    assert.equal(res.status, 200);
    const body = (await res.json()) as { ok: boolean; restart_required: string[] };
    assert.equal(body.ok, true);
    assert.deepEqual([...body.restart_required].sort(), ['audit.dir', 'audit.sink', 'redis.url', 'server.host', 'server.port']);

    const warning = gw
      .logs()
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { level: string; msg: string; settings?: string[] })
      .find((l) => l.settings);
    assert.ok(warning, gw.logs());
    assert.equal(warning.level, 'warn');
    for (const s of body.restart_required) assert.ok(warning.msg.includes(s), warning.msg);

    // Still the running values: same socket, same audit folder and sink.
    const answer = await gw.client().chat.completions.create({ model: 'fast', messages: [{ role: 'user', content: 'after reload' }] });
    assert.ok(answer.id);
    assert.ok((await gw.auditRecords()).some((r) => r.kind === 'request'));
    assert.deepEqual(await readdir(gw.dir).then((names) => names.includes('elsewhere')), false);
  });

  it('reload – a refused reload answers in OpenAI\'s error shape', async () => {
    await writeFile(gw.configFile, 'models: [unclosed\n');
    const res = await fetch(`${gw.url}/admin/reload`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN_KEY}` } });
    assert.equal(res.status, 422);
    const { error } = (await res.json()) as { error: { message: string; type: string; code: string; param: null } };
    assert.equal(error.code, 'invalid_config');
    assert.equal(error.type, 'invalid_request_error');
    assert.match(error.message, /YAML syntax/);
  });
});

describe('request ids and CLI errors', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startTestGateway();
  });
  after(() => gw.close());

  it('x-request-id – on every answer: health, readiness, metrics, admin (ok and refused), unknown paths', async () => {
    const admin = { authorization: `Bearer ${ADMIN_KEY}` };
    const answers = [
      await fetch(`${gw.url}/healthz`),
      await fetch(`${gw.url}/readyz`),
      await fetch(`${gw.url}/metrics`),
      await fetch(`${gw.url}/admin/slo`, { headers: admin }),
      await fetch(`${gw.url}/admin/deployments`, { headers: admin }),
      await fetch(`${gw.url}/admin/slo`),
      await fetch(`${gw.url}/v1/models`, { headers: { authorization: `Bearer ${ADMIN_KEY}x` } }),
      await fetch(`${gw.url}/nowhere`),
    ];
    const ids = new Set<string>();
    for (const res of answers) {
      await res.arrayBuffer();
      const id = res.headers.get('x-request-id');
      assert.match(id ?? '', /^[0-9a-f-]{36}$/, `${res.url} (${res.status})`);
      ids.add(id!);
    }
    assert.equal(ids.size, answers.length, 'each answer its own id');
  });

  it('CLI – a missing config is one line naming the fix, and a non-zero exit', async () => {
    for (const command of ['serve', 'costs', 'check-config']) {
      const { code, stderr } = await lanegate([command, '--config', '/nonexistent/gateway.yaml']);
      assert.equal(code, 1, command);
      assert.equal(stderr.trim().split('\n').length, 1, `${command}: ${stderr}`);
      assert.match(stderr, /\/nonexistent\/gateway\.yaml: no such file: pass --config PATH or set GATEWAY_CONFIG/);
    }
  });

  it('CLI – a port in use is one line naming the port, and a non-zero exit', async () => {
    const port = new URL(gw.url).port;
    const { code, stderr } = await lanegate(['serve', '--config', gw.configFile], { env: { PORT: port } });
    assert.equal(code, 1);
    assert.ok(!stderr.includes('    at '), stderr);
    assert.match(stderr, new RegExp(`^lanegate: 127\\.0\\.0\\.1:${port} is already in use`, 'm'));
  });

  it('CLI – output closed early (broken pipe) is one line, not an unhandled error event', async () => {
    const child = spawn(process.execPath, [cli, 'costs', '--config', gw.configFile], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.destroy();
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.once('close', (c) => resolve(c)));
    assert.notEqual(code, 0);
    assert.equal(stderr, 'lanegate: output closed before the command finished (broken pipe)\n');
  });
});

describe('start-up log', () => {
  const budgets = `
budgets:
  rules:
    - { name: alpha-daily, scope: team, match: [team-alpha], period: day, usd: 5 }
`;
  const warnings = (logs: string) =>
    logs
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { level: string; msg: string })
      .filter((l) => l.level !== 'info' && l.level !== 'debug');

  it('start-up – a fresh start with budgets (nothing to rebuild) logs nothing above info', async () => {
    const gw = await startTestGateway({ extra: budgets });
    try {
      assert.match(gw.logs(), /budget counters rebuilt from the usage ledger/);
      assert.deepEqual(warnings(gw.logs()), []);
    } finally {
      await gw.close();
    }
  });

  it('start-up – a fresh start on a new shared Redis logs nothing above info', async () => {
    const redis = await startRedis();
    const gw = await startTestGateway({ extra: `${budgets}redis: { url: "${redis.url}" }\n` });
    try {
      assert.match(gw.logs(), /budget counters set up from this gateway's usage ledger/);
      assert.deepEqual(warnings(gw.logs()), []);
    } finally {
      await gw.close();
      await redis.stop();
    }
  });
});
