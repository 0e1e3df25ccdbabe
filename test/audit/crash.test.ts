// A gateway killed with SIGKILL under load: every request that got its
// answer (or whose stream started) has a record, or the loss is reported by
// `lanegate audit verify`, the restarted gateway's log, a metric and a loss
// record in the trail. Real child processes throughout.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { APP_KEY, defaultTestConfig } from '../helpers/gateway.js';
import { startRedis } from '../helpers/redis.js';
import { auditTestConfig } from './fixtures.js';

const root = path.resolve(import.meta.dirname, '../..');

interface Child {
  child: ChildProcess;
  /** Made at spawn: a kill may land before anyone waits for the exit. */
  exited: Promise<unknown>;
  port: number;
  output: () => string;
}

async function startChild(configFile: string): Promise<Child> {
  const child = spawn(process.execPath, ['bin/lanegate.mjs', 'serve', '--config', configFile], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = once(child, 'exit');
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const port = await new Promise<number>((resolve, reject) => {
    // Generous: a cold tsx start on a loaded 2-core machine (the whole suite runs in parallel) can take long.
    const timer = setTimeout(() => reject(new Error(`gateway did not start: ${out}`)), 120_000);
    const look = () => {
      const m = /"port":(\d+).*lanegate listening/.exec(out);
      if (m) {
        clearTimeout(timer);
        child.stdout!.off('data', look);
        resolve(Number(m[1]));
      }
    };
    child.stdout!.on('data', look);
    child.once('exit', (code) => reject(new Error(`gateway exited (${code}): ${out}`)));
  });
  return { child, exited, port, output: () => out };
}

function runCli(args: string[]): Promise<{ code: number; out: string }> {
  const child = spawn(process.execPath, ['bin/lanegate.mjs', ...args], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  return once(child, 'exit').then(([code]) => ({ code: code as number, out }));
}

/** The ids of every record in the folder's chain files, and the requests its loss records name. */
async function trail(dir: string): Promise<{ ids: Set<string>; lossIds: Set<string> }> {
  const ids = new Set<string>();
  const lossIds = new Set<string>();
  for (const name of await readdir(dir)) {
    if (!name.endsWith('.jsonl')) continue;
    for (const line of (await readFile(path.join(dir, name), 'utf8')).split('\n')) {
      if (!line) continue;
      let r: { id: string; kind: string; requests?: Array<{ id: string }> };
      try {
        r = JSON.parse(line);
      } catch {
        continue; // a line torn by the kill
      }
      ids.add(r.id);
      if (r.kind === 'loss') for (const q of r.requests ?? []) lossIds.add(q.id);
    }
  }
  return { ids, lossIds };
}

/** The same, from the Redis sink's streams. */
async function streamTrail(raw: Redis, prefix: string): Promise<{ ids: Set<string>; lossIds: Set<string> }> {
  const ids = new Set<string>();
  const lossIds = new Set<string>();
  const keys = await raw.keys(`${prefix}:v1:audit:{*}`);
  for (const key of keys) {
    if ((await raw.type(key)) !== 'stream') continue;
    for (const [, fields] of (await raw.xrange(key, '-', '+')) as Array<[string, string[]]>) {
      const r = JSON.parse(fields[fields.indexOf('record') + 1]!) as { id: string; kind: string; requests?: Array<{ id: string }> };
      ids.add(r.id);
      if (r.kind === 'loss') for (const q of r.requests ?? []) lossIds.add(q.id);
    }
  }
  return { ids, lossIds };
}

/**
 * Starts a gateway, opens three streams that will not end before the kill,
 * drives non-streamed requests from 12 workers until 400 answers came back,
 * then SIGKILLs it mid-load. Returns the ids of every answer that started.
 */
async function killUnderLoad(configFile: string): Promise<string[]> {
  const first = await startChild(configFile);
  const base = `http://127.0.0.1:${first.port}`;
  const headers = { authorization: `Bearer ${APP_KEY}`, 'content-type': 'application/json' };
  const answered: string[] = [];
  let killed = false;
  try {
    // Streams whose answers have started: their records can only exist once they end, which they never do.
    const streams: Array<ReadableStreamDefaultReader<Uint8Array>> = [];
    for (let i = 0; i < 3; i++) {
      const res = await fetch(`${base}/v1/chat/completions`, {
        method: 'POST',
        headers,
        // A word every 200 ms: these streams outlast the load however slow the machine.
        body: JSON.stringify({ model: 'slow-stream', stream: true, messages: [{ role: 'user', content: 'word '.repeat(1000) }] }),
      });
      assert.equal(res.status, 200);
      const reader = res.body!.getReader();
      await reader.read();
      answered.push(res.headers.get('x-request-id')!);
      streams.push(reader);
    }
    // Non-streamed answers under concurrent load, until enough have come back; then the kill lands mid-load.
    const workers = Array.from({ length: 12 }, async () => {
      while (!killed && first.child.exitCode === null) {
        try {
          const res = await fetch(`${base}/v1/chat/completions`, {
            method: 'POST',
            headers,
            body: JSON.stringify({ model: 'fast', messages: [{ role: 'user', content: 'hello there' }] }),
          });
          const text = await res.text();
          if (res.status === 200 && text.includes('"choices"')) answered.push(res.headers.get('x-request-id')!);
          if (answered.length >= 400 && !killed) {
            killed = true;
            first.child.kill('SIGKILL');
          }
        } catch {
          // the connection the kill cut
        }
      }
    });
    await Promise.all(workers);
    await first.exited;
    for (const r of streams) await r.cancel().catch(() => {});
  } finally {
    if (first.child.exitCode === null) first.child.kill('SIGKILL');
  }
  assert.ok(killed, `the gateway was killed under load, not gone before: ${first.output()}`);
  return answered;
}

describe('audit after a crash', () => {
  it('audit crash – SIGKILL under load: every answered request has a record or is reported lost by verify, the restart log, a metric and a loss record', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'lanegate-crash-'));
    const auditDir = path.join(dir, 'audit');
    const configFile = path.join(dir, 'gateway.yaml');
    await writeFile(configFile, defaultTestConfig({}).replaceAll('{{dir}}', dir));
    const answered = await killUnderLoad(configFile);

    try {
      const before = await trail(auditDir);
      const missing = answered.filter((id) => !before.ids.has(id));
      // The streams never ended: at least their records are missing.
      assert.ok(missing.length >= 3, `missing: ${missing.length}`);

      // verify, before the gateway starts again, finds the loss from the intent log.
      const verified = await runCli(['audit', 'verify', '--dir', auditDir]);
      assert.equal(verified.code, 1, verified.out);
      const reported = /LOST: (\d+) answered request/.exec(verified.out);
      assert.ok(reported, verified.out);

      // The restart names every one of them in a loss record, logs it and exposes it as a metric.
      const second = await startChild(configFile);
      try {
        const after = await trail(auditDir);
        for (const id of answered) assert.ok(after.ids.has(id) || after.lossIds.has(id), `request ${id} was answered but has no record and no loss was reported`);
        for (const id of missing) assert.ok(after.lossIds.has(id), `lost request ${id} is named in the loss record`);
        assert.equal(Number(reported[1]), after.lossIds.size, 'verify counted what the restart found');
        assert.match(second.output(), /AUDIT RECORDS LOST: the gateway did not stop cleanly/);
        const metrics = await (await fetch(`http://127.0.0.1:${second.port}/metrics`)).text();
        assert.match(metrics, new RegExp(`lanegate_audit_crash_lost_records ${after.lossIds.size}\\b`));
        assert.match(metrics, new RegExp(`lanegate_audit_dropped_total\\{reason="crash"\\} ${after.lossIds.size}\\b`));
      } finally {
        second.child.kill('SIGTERM');
        await second.exited;
      }
      // A clean stop leaves no intent behind: every record it promised was written.
      assert.deepEqual(await readdir(path.join(auditDir, 'intents')), []);

      // After the restart the trail itself says what is missing: verify still fails, from the loss record.
      const again = await runCli(['audit', 'verify', '--dir', auditDir]);
      assert.equal(again.code, 1, again.out);
      assert.match(again.out, /from the loss record/);
      assert.match(again.out, /every chain is intact, but answered requests have no record/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('audit crash – with the Redis Streams sink, the restart after a SIGKILL under load names every answered request without a stream entry in a loss record, logs it and exposes the metric', async () => {
    const redis = await startRedis();
    const raw = new Redis(redis.url, { maxRetriesPerRequest: 1 });
    const dir = await mkdtemp(path.join(tmpdir(), 'lanegate-crash-redis-'));
    try {
      const configFile = path.join(dir, 'gateway.yaml');
      const yaml = auditTestConfig({ audit: 'audit:\n  sink: redis\n  dir: {{dir}}/audit\n', extra: `redis: { url: "${redis.url}", key_prefix: crash-test }`, policies: false });
      await writeFile(configFile, yaml.replaceAll('{{dir}}', dir));
      const answered = await killUnderLoad(configFile);
      const before = await streamTrail(raw, 'crash-test');
      const missing = answered.filter((id) => !before.ids.has(id));
      assert.ok(missing.length >= 3, `missing: ${missing.length}`);

      const second = await startChild(configFile);
      try {
        // The loss record is in the stream, or on its way there from the spool
        // (a busy machine can time out the first write): wait for it, bounded.
        let after = await streamTrail(raw, 'crash-test');
        const deadline = Date.now() + 15_000;
        while (Date.now() < deadline && answered.some((id) => !after.ids.has(id) && !after.lossIds.has(id))) {
          await new Promise((r) => setTimeout(r, 250));
          after = await streamTrail(raw, 'crash-test');
        }
        for (const id of answered) assert.ok(after.ids.has(id) || after.lossIds.has(id), `request ${id} was answered but has no record and no loss was reported`);
        for (const id of missing) assert.ok(after.lossIds.has(id), `lost request ${id} is named in the loss record`);
        assert.match(second.output(), /AUDIT RECORDS LOST: the gateway did not stop cleanly/);
        const metrics = await (await fetch(`http://127.0.0.1:${second.port}/metrics`)).text();
        assert.match(metrics, new RegExp(`lanegate_audit_crash_lost_records ${after.lossIds.size}\\b`));
      } finally {
        second.child.kill('SIGTERM');
        await second.exited;
      }
      assert.deepEqual(await readdir(path.join(dir, 'audit', 'intents')), []);
    } finally {
      raw.disconnect();
      await redis.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
