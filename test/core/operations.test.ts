// What an operator meets around the API: the CLI's reports and errors, config
// checks, hot reload, request ids on every answer and a calm start-up log.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { ADMIN_KEY, startTestGateway, type TestGateway } from '../helpers/gateway.js';

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
