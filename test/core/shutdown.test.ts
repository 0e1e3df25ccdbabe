import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { APP_KEY, defaultTestConfig } from '../helpers/gateway.js';

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
