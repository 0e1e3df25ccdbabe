import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { metricValue, postChat, waitFor } from '../helpers/routing.js';
import { promptConfig, SHIPPED } from './fixtures.js';

const ROOT = path.resolve(import.meta.dirname, '../..');

function lanegate(args: string[], cwd: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [path.join(ROOT, 'bin/lanegate.mjs'), ...args], { cwd, timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

async function versionServed(gw: TestGateway): Promise<string | null> {
  const res = await postChat(gw, { model: 'prompt:triage', messages: [], variables: { ticket: 'Which version?' } });
  assert.equal(res.status, 200);
  await res.arrayBuffer();
  return res.headers.get('x-gateway-prompt-version');
}

const commentLines = (text: string) => text.split('\n').filter((l) => l.trimStart().startsWith('#'));

describe('promote and rollback', () => {
  let gw: TestGateway;
  let pinsFile: string;
  before(async () => {
    gw = await startTestGateway({
      yaml: promptConfig(),
      watch: true,
      files: {
        ...SHIPPED,
        // v3 differs from v2 only where the mock does not look (the system message), so it passes the gate.
        'prompts/triage/v3.yaml': SHIPPED['prompts/triage/v2.yaml']!.replace('You triage support tickets for Acme.', 'You triage support tickets for Acme, carefully.'),
      },
    });
    pinsFile = path.join(gw.dir, 'prompts/pins.yaml');
  });
  after(() => gw.close());

  async function reloadedAfter(count: number): Promise<void> {
    await waitFor('the gateway to reload the pins', async () => {
      const ok = (await metricValue(gw, 'lanegate_config_reloads_total{result="ok"}')) ?? 0;
      return ok > count ? true : undefined;
    }, 5000);
  }

  it('promote – runs the gate, rewrites the pin keeping comments and order, and the next request gets the new version', async () => {
    assert.equal(await versionServed(gw), 'triage@v2');
    const before = await readFile(pinsFile, 'utf8');
    const reloads = (await metricValue(gw, 'lanegate_config_reloads_total{result="ok"}')) ?? 0;

    const result = await lanegate(['promote', 'triage', 'v3', '--by', 'ada', '--note', 'careful wording', '--config', gw.configFile], gw.dir);
    assert.equal(result.code, 0, result.stderr + result.stdout);
    assert.match(result.stdout, /gate PASS/);
    assert.match(result.stdout, /triage: v2 -> v3/);

    const after = await readFile(pinsFile, 'utf8');
    assert.deepEqual(commentLines(after), commentLines(before), 'every comment is kept');
    const changed = after.split('\n').filter((l, i) => l !== before.split('\n')[i]);
    assert.deepEqual(changed, ['  live: v3', '  history: [v1, v2] # versions that were live before, oldest first']);

    await reloadedAfter(reloads);
    assert.equal(await versionServed(gw), 'triage@v3');

    const record = await waitFor('the promotion record', async () => (await gw.auditRecords()).find((r) => r.kind === 'prompt_promotion' && r.applied === true));
    assert.equal(record.from, 'v2');
    assert.equal(record.to, 'v3');
    assert.equal(record.by, 'ada');
    assert.equal(record.note, 'careful wording');
    const gate = record.gate as { report_file: string; report_sha256: string; passed: boolean; set: string };
    assert.equal(gate.passed, true);
    assert.equal(gate.set, 'triage@v1');
    assert.equal(createHash('sha256').update(await readFile(gate.report_file)).digest('hex'), gate.report_sha256);
  });

  it('promote – a failing gate leaves the pin alone, exits 1 and is still recorded', async () => {
    const before = await readFile(pinsFile, 'utf8');
    const result = await lanegate(['promote', 'triage', 'v1', '--config', gw.configFile], gw.dir);
    assert.equal(result.code, 1, result.stderr);
    assert.match(result.stderr, /Gate failed: triage stays on v3/);
    assert.equal(await readFile(pinsFile, 'utf8'), before);
    const record = await waitFor('the refused promotion record', async () => (await gw.auditRecords()).find((r) => r.kind === 'prompt_promotion' && r.applied === false));
    assert.equal(record.to, 'v1');
    assert.equal((record.gate as { passed: boolean }).passed, false);
    assert.equal(await versionServed(gw), 'triage@v3');
  });

  it('rollback – restores the previous pin from the file\'s history; the next request gets it', async () => {
    const reloads = (await metricValue(gw, 'lanegate_config_reloads_total{result="ok"}')) ?? 0;
    const result = await lanegate(['rollback', 'triage', '--by', 'oncall', '--config', gw.configFile], gw.dir);
    assert.equal(result.code, 0, result.stderr + result.stdout);
    assert.match(result.stdout, /triage: v3 -> v2/);
    const text = await readFile(pinsFile, 'utf8');
    assert.equal(text, SHIPPED['prompts/pins.yaml'], 'promote then rollback gives back the file as it was, byte for byte');

    await reloadedAfter(reloads);
    assert.equal(await versionServed(gw), 'triage@v2');
    const record = await waitFor('the rollback record', async () => (await gw.auditRecords()).find((r) => r.kind === 'prompt_rollback'));
    assert.equal(record.from, 'v3');
    assert.equal(record.to, 'v2');
    assert.equal(record.by, 'oncall');

    // The CLI's records have a chain of their own, intact beside the gateway's.
    const verify = await lanegate(['audit', 'verify', '--dir', path.join(gw.dir, 'audit')], gw.dir);
    assert.equal(verify.code, 0, verify.stdout + verify.stderr);
    assert.match(verify.stdout, /_prompts: OK/);
  });

  it('rollback – with no history left it refuses, and an invalid pins edit is rejected by the reload', async () => {
    const first = await lanegate(['rollback', 'triage', '--config', gw.configFile], gw.dir);
    assert.equal(first.code, 0, first.stderr);
    const second = await lanegate(['rollback', 'triage', '--config', gw.configFile], gw.dir);
    assert.equal(second.code, 2);
    assert.match(second.stderr, /no earlier version of triage is recorded/);

    // A hand edit to a version that does not exist: validate-then-swap keeps the last good pins.
    const errors = (await metricValue(gw, 'lanegate_config_reloads_total{result="error"}')) ?? 0;
    const { writeFile } = await import('node:fs/promises');
    await writeFile(pinsFile, 'triage: v42\n');
    await waitFor('the bad pins to be rejected', async () => (((await metricValue(gw, 'lanegate_config_reloads_total{result="error"}')) ?? 0) > errors ? true : undefined), 5000);
    assert.equal(await versionServed(gw), 'triage@v1');
    assert.match(gw.logs(), /pins\.yaml: triage: triage has no version v42/);
  });
});
