// The work queue's edges with two gateways on one Redis (one in this process,
// one a child process) and a short claim timeout: a line held longer than the
// timeout by a live replica (a slow upstream, a backoff after 429s) is not
// taken over and run twice; a cancel racing the finalizer never loses to it
// or undoes it; a background response cancelled through the replica not
// running it stays cancelled; `lanegate batches cancel` against the Redis
// deployment cancels a batch the gateways are running.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import OpenAI from 'openai';
import { startFakeOpenAI, type FakeOpenAI, type RecordedCall } from '../helpers/fake-openai.js';
import { APP_KEY, defaultTestConfig, startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { spawnGateway, type GatewayProcess } from '../helpers/gateway-process.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';
import { runCli } from '../helpers/cli.js';
import { chatLines, outputLines, uploadBatchInput, waitForBatch } from '../helpers/batches.js';

// Short enough that the old code's XAUTOCLAIM took lines over within a line's run; long enough that renewals every
// CLAIM_IDLE_MS / 3 survive a loaded machine's event-loop lag (at 350 ms a loaded run saw a line taken over and sent
// upstream twice). The upstream's first-byte timeout is raised so a line can be held past several claim timeouts.
const CLAIM_IDLE_MS = 1_000;
const TIMEOUTS = 'first_byte_ms: 1500, total_ms: 5000';
const LONG_TIMEOUTS = 'first_byte_ms: 10000, total_ms: 20000';

/** Upstream calls per prompt that starts with `tag`. */
function callsPerLine(calls: RecordedCall[], tag: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const c of calls) {
    const content = (c.body as { messages?: Array<{ content: string }> }).messages?.[0]?.content ?? '';
    if (content.startsWith(tag)) out.set(content, (out.get(content) ?? 0) + 1);
  }
  return out;
}

/** The replica's own lanegate_queue_retries_total, all codes: tries it retried. */
async function retriesOn(url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  let n = 0;
  for (const m of text.matchAll(/^lanegate_queue_retries_total\{[^}]*\} (\d+)/gm)) n += Number(m[1]);
  return n;
}

/** The replica's own lanegate_queue_running: queued lines it runs now. */
async function runningOn(url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const m = /^lanegate_queue_running (\d+)/m.exec(text);
  assert.ok(m, 'lanegate_queue_running is on /metrics');
  return Number(m[1]);
}

async function until<T>(what: string, read: () => Promise<T>, ok: (v: T) => boolean, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await read();
    if (ok(v)) return v;
    if (Date.now() > deadline) throw new Error(`${what}: still ${JSON.stringify(v)} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('work queue on Redis – two replicas, short claim timeout', () => {
  let upstream: FakeOpenAI;
  let redis: TestRedis;
  let dir: string;
  let a: TestGateway;
  let b: GatewayProcess;
  let configFile: string;
  let viaA: OpenAI;
  let viaB: OpenAI;
  before(async () => {
    upstream = await startFakeOpenAI();
    redis = await startRedis();
    dir = await mkdtemp(path.join(tmpdir(), 'lanegate-redis-edges-'));
    // Each replica runs up to 4 lines: the one not running a line has room to take it over.
    const extra = `
redis: { url: "${redis.url}", key_prefix: redis-edges }
queue: { concurrency: 4, claim_idle_ms: ${CLAIM_IDLE_MS}, poll_ms: 20, backoff_ms: 1500, max_attempts: 10 }
files: { dir: "${dir}/files" }
`;
    // The first match is the fake OpenAI provider's.
    const yaml = defaultTestConfig({ openaiUrl: upstream.url }).replace(TIMEOUTS, LONG_TIMEOUTS) + extra;
    assert.ok(yaml.includes(LONG_TIMEOUTS));
    a = await startTestGateway({ openaiUrl: upstream.url, yaml });
    configFile = path.join(dir, 'gateway.yaml');
    await writeFile(configFile, yaml.replaceAll('{{dir}}', dir));
    b = await spawnGateway(configFile);
    viaA = a.client();
    viaB = new OpenAI({ apiKey: APP_KEY, baseURL: b.baseURL, maxRetries: 0 });
  });
  after(async () => {
    await b?.kill();
    await a?.close();
    await upstream?.close();
    await redis?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('claims – an upstream slower than claim_idle_ms: each line goes upstream once', async () => {
    // Under the upstream's first-byte timeout, over three claim timeouts.
    upstream.always({ delayMs: 3_500 });
    try {
      const calls = upstream.calls.length;
      const file = await uploadBatchInput(viaA, chatLines(3, 'gpt-fake', 'slow-claim '));
      const created = await viaA.batches.create({ input_file_id: file.id, endpoint: '/v1/chat/completions', completion_window: '24h' });
      const batch = await waitForBatch(viaB, created.id, 30_000);
      assert.equal(batch.status, 'completed');
      assert.deepEqual(batch.request_counts, { total: 3, completed: 3, failed: 0 });
      assert.equal((await outputLines(viaA, batch.output_file_id!)).length, 3);
      const perLine = callsPerLine(upstream.calls.slice(calls), 'slow-claim ');
      assert.deepEqual([...perLine.values()], [1, 1, 1], `upstream calls per line: ${JSON.stringify([...perLine])}`);
    } finally {
      upstream.always(undefined);
    }
  });

  it('claims – a line backing off after 429s for longer than claim_idle_ms: one answered call', async () => {
    const calls = upstream.calls.length;
    // One line (so the replica not running it is not paused by a 429 of its own), refused twice: the worker
    // holds it through 1500 + 3000 ms of backoff, four and a half claim timeouts.
    const refused = { status: 429, body: { error: { message: 'slow down', type: 'rate_limit_error' } } };
    const retriedBefore = [await retriesOn(a.url), await retriesOn(b.url)];
    upstream.script(refused, refused);
    const file = await uploadBatchInput(viaA, chatLines(1, 'gpt-fake', 'backoff-claim '));
    const created = await viaB.batches.create({ input_file_id: file.id, endpoint: '/v1/chat/completions', completion_window: '24h' });
    const batch = await waitForBatch(viaA, created.id, 30_000);
    assert.equal(batch.status, 'completed');
    assert.deepEqual(batch.request_counts, { total: 1, completed: 1, failed: 0 });
    // Two refused calls, then the one answered: a replica that took the line over would have sent more.
    assert.equal(upstream.calls.length - calls, 3);
    // Both retries were the same replica's: one that took the line over in a backoff would have tried (and retried) it too.
    const retried = [(await retriesOn(a.url)) - retriedBefore[0]!, (await retriesOn(b.url)) - retriedBefore[1]!];
    assert.deepEqual([...retried].sort(), [0, 2], `retries on a, b: ${retried.join(', ')}`);
  });

  it('cancel racing finalize – a cancel that was accepted ends cancelled, a refused one completed; never reverts', async () => {
    const ROUNDS = 30;
    const seen: string[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const file = await uploadBatchInput(viaA, chatLines(1, 'gpt-fake', `race-${round} `));
      const created = await viaA.batches.create({ input_file_id: file.id, endpoint: '/v1/chat/completions', completion_window: '24h' });
      // The moment the line's answer is counted its replica starts finalizing: cancel then, through the other replica.
      while ((await viaA.batches.retrieve(created.id)).request_counts!.completed < 1) await new Promise((r) => setTimeout(r, 1));
      const cancel = await viaB.batches.cancel(created.id).then(
        // Accepted when the batch records it (cancelling_at); the status shown may already be the finalizer's.
        (b) => (b.cancelling_at ? 'accepted' : `not accepted (${b.status})`),
        (err: { status?: number }) => {
          assert.equal(err.status, 400, String(err));
          return 'refused';
        },
      );
      const final = await waitForBatch(viaA, created.id, 10_000);
      seen.push(`${cancel}->${final.status}`);
      // Accepted: the batch ends cancelled, with the answer it has. Too late (finalizing or completed: refused): completed.
      if (cancel === 'accepted') assert.equal(final.status, 'cancelled', seen.join(' '));
      else assert.equal(final.status, 'completed', seen.join(' '));
      assert.equal(final.request_counts!.completed, 1);
      assert.ok(final.output_file_id, 'the answered line is in the output file');
      assert.equal((await outputLines(viaB, final.output_file_id!)).length, 1);
      // Final is final: nothing written late turns it back.
      await new Promise((r) => setTimeout(r, 50));
      assert.equal((await viaB.batches.retrieve(created.id)).status, final.status);
    }
  });

  it('background – created on one replica, run by either, cancelled through the one not running it: stays cancelled', async () => {
    upstream.always({ delayMs: 800 });
    try {
      const calls = upstream.calls.length;
      const created = await viaA.responses.create({ model: 'gpt-fake', input: 'background across replicas', background: true });
      assert.equal(created.status, 'queued');
      // Both replicas read the same stored Response.
      await until('in_progress through B', () => viaB.responses.retrieve(created.id), (r) => r.status === 'in_progress');
      const onA = await runningOn(a.url);
      const [runner, other] = onA === 1 ? ([a.url, viaB] as const) : ([b.url, viaA] as const);
      assert.equal(await runningOn(runner), 1, 'one replica runs it');
      const cancelled = await other.responses.cancel(created.id);
      assert.equal(cancelled.status, 'cancelled');
      // The runner was not told: its upstream answer arrives, and is not stored over the cancel.
      await until('the runner to finish', () => runningOn(runner), (n) => n === 0);
      assert.equal((await viaA.responses.retrieve(created.id)).status, 'cancelled');
      assert.equal((await viaB.responses.retrieve(created.id)).status, 'cancelled');
      assert.equal(upstream.calls.length - calls, 1, 'run once');
    } finally {
      upstream.always(undefined);
    }
  });

  it('background – a cancel racing the end of the run: once answered cancelled, it stays cancelled', async () => {
    const DELAY_MS = 150;
    upstream.always({ delayMs: DELAY_MS });
    const seen: string[] = [];
    try {
      for (let round = 0; round < 20; round++) {
        const created = await viaA.responses.create({ model: 'gpt-fake', input: `race ${round}`, background: true });
        await until('in_progress', () => viaB.responses.retrieve(created.id), (r) => r.status !== 'queued');
        // Around the moment the upstream answers: before it, at it, just after it.
        await new Promise((r) => setTimeout(r, DELAY_MS - 30 + ((round * 7) % 50)));
        const cancel = (await (round % 2 ? viaA : viaB).responses.cancel(created.id)).status;
        await until('both replicas idle', async () => (await runningOn(a.url)) + (await runningOn(b.url)), (n) => n === 0);
        const final = (await viaA.responses.retrieve(created.id)).status;
        seen.push(`${cancel}->${final}`);
        if (cancel === 'cancelled') assert.equal(final, 'cancelled', seen.join(' '));
        else assert.equal(final, cancel, seen.join(' '));
      }
    } finally {
      upstream.always(undefined);
    }
  });

  it('background – polled to completed through the other replica', async () => {
    const created = await viaB.responses.create({ model: 'gpt-fake', input: 'polled across replicas', background: true });
    const done = await until('completed through A', () => viaA.responses.retrieve(created.id), (r) => r.status === 'completed' || r.status === 'failed');
    assert.equal(done.status, 'completed');
    assert.equal(done.output_text, 'Hello from fake-openai: polled across replicas');
  });

  it('cli – lanegate batches cancel against the Redis deployment: the gateways stop running its lines and end it cancelled', async () => {
    // 240 lines of a second each, 8 at a time: the batch would run for 30 s, longer than the CLI takes to start on a loaded machine.
    upstream.always({ delayMs: 1000 });
    try {
      const calls = upstream.calls.length;
      const file = await uploadBatchInput(viaA, chatLines(240, 'gpt-fake', 'cli-cancel '));
      const created = await viaA.batches.create({ input_file_id: file.id, endpoint: '/v1/chat/completions', completion_window: '24h' });
      await until('a first line', () => viaA.batches.retrieve(created.id), (b) => b.request_counts!.completed >= 1);
      const cancel = await runCli(['batches', 'cancel', created.id, '--config', configFile]);
      assert.equal(cancel.code, 0, cancel.stderr);
      const printed = JSON.parse(cancel.stdout) as { status: string; cancelling_at: number | null };
      assert.equal(printed.status, 'cancelling');
      assert.ok(printed.cancelling_at);
      const shown = await runCli(['batches', 'show', created.id, '--config', configFile]);
      assert.equal(shown.code, 0, shown.stderr);
      assert.ok(['cancelling', 'finalizing', 'cancelled'].includes(JSON.parse(shown.stdout).status), shown.stdout);
      const final = await waitForBatch(viaB, created.id, 20_000);
      assert.equal(final.status, 'cancelled');
      const done = final.request_counts!.completed + final.request_counts!.failed;
      assert.ok(done >= 1 && done < 240, `answered ${done} of 240 before the cancel took`);
      // Only lines answered went upstream (once each): the rest were cancelled without running.
      assert.equal(upstream.calls.length - calls, done);
      assert.equal((await outputLines(viaA, final.output_file_id!)).length, final.request_counts!.completed);
      // Cancelling it again is no error; a completed batch cannot be cancelled.
      const again = await runCli(['batches', 'cancel', created.id, '--config', configFile]);
      assert.equal(again.code, 0, again.stderr);
      assert.equal(JSON.parse(again.stdout).status, 'cancelled');
    } finally {
      upstream.always(undefined);
    }
  });
});
