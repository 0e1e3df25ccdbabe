import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { createServer, type AddressInfo } from 'node:net';
import { APP_KEY, defaultTestConfig } from '../helpers/gateway.js';
import { startRedis } from '../helpers/redis.js';

const root = path.resolve(import.meta.dirname, '../..');

describe('shutdown', () => {
  it('shutdown – SIGTERM lets an in-flight stream finish, flushes the audit and exits 0', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'lanegate-shutdown-'));
    let started: ChildProcess | undefined;
    try {
      const configFile = path.join(dir, 'gateway.yaml');
      await writeFile(configFile, defaultTestConfig({}).replaceAll('{{dir}}', dir));
      const child = spawn(process.execPath, ['bin/lanegate.mjs', 'serve', '--config', configFile], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
      started = child;
      let out = '';
      child.stdout.on('data', (d) => (out += d));
      child.stderr.on('data', (d) => (out += d));
      const port = await new Promise<number>((resolve, reject) => {
        // A start from the TypeScript sources compiles them first: over 20 s on a loaded 2-core machine.
        const timer = setTimeout(() => reject(new Error(`gateway did not start: ${out}`)), 120_000);
        child.stdout.on('data', () => {
          const m = /"port":(\d+).*lanegate listening/.exec(out);
          if (m) {
            clearTimeout(timer);
            resolve(Number(m[1]));
          }
        });
      });
      const res = await fetch(`http://127.0.0.1:${port}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${APP_KEY}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'slow-stream', stream: true, messages: [{ role: 'user', content: 'one two three four' }] }),
      });
      assert.equal(res.status, 200);
      const reader = res.body!.getReader();
      await reader.read(); // the stream is under way
      child.kill('SIGTERM');
      let text = '';
      const decoder = new TextDecoder();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        text += decoder.decode(value);
      }
      assert.ok(text.trimEnd().endsWith('data: [DONE]'), `stream finished cleanly: ${text}`);
      assert.ok(!text.includes('"error"'));
      const [code] = await once(child, 'exit');
      assert.equal(code, 0, out);
      await assert.rejects(fetch(`http://127.0.0.1:${port}/healthz`), 'no longer accepting');
      // The records file (its index, .idx, sits beside it once closed).
      const files = (await readdir(path.join(dir, 'audit'))).filter((f) => f.endsWith('.jsonl'));
      const records = (await readFile(path.join(dir, 'audit', files[0]!), 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
      assert.equal(records.length, 1);
      assert.equal(records[0].model, 'slow-stream');
      assert.equal(records[0].status, 200);
    } finally {
      // A failure must not leave the gateway running: its pipes would keep the test process alive.
      if (started && started.exitCode === null && started.signalCode === null) {
        started.kill('SIGKILL');
        await once(started, 'exit');
      }
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('failed start', () => {
  it('a start that fails late (port taken) closes what it opened: no Redis client, timer or socket keeps the process alive', async () => {
    const redis = await startRedis();
    const taken = createServer().listen(0, '127.0.0.1');
    await once(taken, 'listening');
    const dir = await mkdtemp(path.join(tmpdir(), 'lanegate-failed-start-'));
    try {
      const configFile = path.join(dir, 'gateway.yaml');
      const extra = `\nredis: { url: "${redis.url}", key_prefix: failed-start }\nfiles: { dir: "${dir}/files" }\n`;
      await writeFile(configFile, (defaultTestConfig({}) + extra).replaceAll('{{dir}}', dir));
      // The gateway embedded in a program that does not exit by itself: it ends only when nothing is left running.
      const program = `
        const { startGateway } = await import(${JSON.stringify(path.join(root, 'src/gateway.ts'))});
        try {
          await startGateway({ configFile: ${JSON.stringify(configFile)}, port: ${(taken.address() as AddressInfo).port}, host: '127.0.0.1', watch: false });
          console.log('started');
        } catch (err) {
          console.log('start failed:', err.code);
        }`;
      const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', program], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      child.stdout.on('data', (d) => (out += d));
      child.stderr.on('data', (d) => (out += d));
      const exited = once(child, 'exit');
      const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
      const [code, signal] = (await exited) as [number | null, NodeJS.Signals | null];
      clearTimeout(timer);
      assert.match(out, /start failed: EADDRINUSE/);
      assert.equal(signal, null, `the process was still running 20 s after its failed start:\n${out.slice(-2000)}`);
      assert.equal(code, 0);
    } finally {
      taken.close();
      await redis.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
