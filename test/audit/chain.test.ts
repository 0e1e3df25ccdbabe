import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cp, mkdtemp, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { createFileBackend } from '../../src/audit/transport/file-sink.js';
import { toPending } from '../../src/audit/transport/pending.js';
import { purge } from '../../src/audit/read/retention.js';
import { auditEntrySchema, type AuditEntry } from '../../src/audit/schema.js';
import { verifyDir } from '../../src/audit/read/verify.js';
import { createLogger } from '../../src/telemetry/logger.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { AUDIT_POLICIES, auditTestConfig, postJson } from './fixtures.js';

const run = promisify(execFile);
const CLI = path.resolve('bin/lanegate.mjs');
const logger = createLogger({ level: 'silent' });

async function cli(...args: string[]): Promise<{ code: number; out: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [CLI, ...args], { timeout: 60_000 });
    return { code: 0, out: stdout + stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: e.code ?? -1, out: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
}

/** A copy of the gateway's audit folder to tamper with. */
async function copyOf(dir: string): Promise<string> {
  const copy = await mkdtemp(path.join(tmpdir(), 'lanegate-audit-copy-'));
  await cp(dir, copy, { recursive: true });
  return copy;
}

async function greenFile(dir: string): Promise<string> {
  const name = (await readdir(dir)).find((n) => /^audit-green-.*\.jsonl$/.test(n));
  assert.ok(name, 'a green file');
  return path.join(dir, name);
}

describe('audit hash chain, verify and purge', () => {
  let gw: TestGateway;
  let dir: string;
  const copies: string[] = [];
  before(async () => {
    gw = await startTestGateway({ yaml: auditTestConfig(), files: { 'policies/lanes.yaml': AUDIT_POLICIES } });
    for (let i = 0; i < 6; i++) {
      const res = await postJson(gw, { model: 'fast', messages: [{ role: 'user', content: `chained record ${i}` }] });
      assert.equal(res.status, 200);
      await res.text();
    }
    await (await postJson(gw, { model: 'fast', messages: [{ role: 'user', content: 'to amber' }] }, { 'x-gateway-lane': 'amber' })).text();
    await gw.gateway.audit.flush();
    dir = path.join(gw.dir, 'audit');
  });
  after(async () => {
    await gw.close();
    for (const c of copies) await rm(c, { recursive: true, force: true });
  });

  it('verify – an untouched trail verifies, every line parses with the schema', async () => {
    const report = await verifyDir(dir);
    assert.equal(report.ok, true, JSON.stringify(report));
    const green = report.chains.find((c) => c.chain === 'green')!;
    assert.ok(green.records >= 6);
    for (const line of (await readFile(await greenFile(dir), 'utf8')).split('\n').filter(Boolean)) {
      const parsed = auditEntrySchema.safeParse(JSON.parse(line));
      assert.ok(parsed.success, JSON.stringify(parsed.error?.issues));
    }
    const { code, out } = await cli('audit', 'verify', '--dir', dir);
    assert.equal(code, 0, out);
    assert.match(out, /green: OK/);
  });

  it('verify – an edited record is reported as the first bad one, with its file, line and id', async () => {
    const copy = await copyOf(dir);
    copies.push(copy);
    const file = await greenFile(copy);
    const lines = (await readFile(file, 'utf8')).split('\n');
    const victim = JSON.parse(lines[2]!) as { id: string };
    lines[2] = lines[2]!.replace('"status":200', '"status":201');
    await writeFile(file, lines.join('\n'));

    const report = await verifyDir(copy);
    assert.equal(report.ok, false);
    const green = report.chains.find((c) => c.chain === 'green')!;
    assert.deepEqual({ ...green.problem, reason: undefined }, { file: path.basename(file), line: 3, id: victim.id, reason: undefined });
    assert.match(green.problem!.reason, /does not match its hash/);
    assert.equal(green.records, 2, 'the two records before it are intact');
    assert.ok(!report.chains.find((c) => c.chain === 'amber')!.problem, 'other lanes are unaffected');

    const { code, out } = await cli('audit', 'verify', '--dir', copy);
    assert.equal(code, 1);
    assert.match(out, new RegExp(`green: BROKEN at ${path.basename(file).replaceAll('.', '\\.')} line 3 \\(record ${victim.id}\\)`));
  });

  it('verify – a removed record is reported at the record after the gap', async () => {
    const copy = await copyOf(dir);
    copies.push(copy);
    const file = await greenFile(copy);
    const lines = (await readFile(file, 'utf8')).split('\n');
    const next = JSON.parse(lines[4]!) as { id: string };
    lines.splice(3, 1);
    await writeFile(file, lines.join('\n'));
    const green = (await verifyDir(copy)).chains.find((c) => c.chain === 'green')!;
    assert.equal(green.problem?.line, 4);
    assert.equal(green.problem?.id, next.id);
    assert.match(green.problem!.reason, /does not follow the one before it/);
  });

  it('verify – a torn last line and a re-hashed forgery are both caught', async () => {
    const copy = await copyOf(dir);
    copies.push(copy);
    const file = await greenFile(copy);
    const text = await readFile(file, 'utf8');
    await writeFile(file, `${text}{"v":2,"kind":"request","id":"torn`);
    let green = (await verifyDir(copy)).chains.find((c) => c.chain === 'green')!;
    assert.match(green.problem!.reason, /incomplete line/);

    // Changing a record and fixing its own hash still breaks the link to the next one.
    const { sealLine } = await import('../../src/audit/chain.js');
    const lines = text.split('\n');
    const rec = JSON.parse(lines[1]!) as Record<string, unknown>;
    const prev = rec.prev as string;
    delete rec.prev;
    delete rec.hash;
    rec.team = 'someone-else';
    lines[1] = sealLine(JSON.stringify(rec), prev).line;
    await writeFile(file, lines.join('\n'));
    green = (await verifyDir(copy)).chains.find((c) => c.chain === 'green')!;
    assert.equal(green.problem?.line, 3, 'the record after the forgery no longer follows it');
  });

  it('retention – expired files go whole, the purge is recorded, and the rest still verifies; a deletion without one does not', async () => {
    const work = await mkdtemp(path.join(tmpdir(), 'lanegate-audit-retention-'));
    copies.push(work);
    const entry = (i: number): AuditEntry => ({
      v: 2,
      kind: 'approval_decision',
      id: `approval-${i}`,
      time: new Date().toISOString(),
      decision: 'approved',
      by: 'tester',
      reason: null,
      request_id: `req-${i}`,
      lane: 'green',
    });
    // Three days of one lane: write, then date the files back as if written then.
    for (const day of ['2020-01-01', '2020-01-02']) {
      const backend = createFileBackend({ dir: work, rotateBytes: 1 << 20, logger });
      const out = await backend.write([entry(1), entry(2)].map(toPending));
      assert.equal(out.failed.length, 0);
      await backend.close();
      const today = (await readdir(work)).find((n) => n.endsWith('.000.jsonl') && !n.includes('2020-'))!;
      await rename(path.join(work, today), path.join(work, today.replace(/\d{4}-\d{2}-\d{2}/, day)));
      await rm(path.join(work, today.replace('.jsonl', '.idx')), { force: true });
    }
    const backend = createFileBackend({ dir: work, rotateBytes: 1 << 20, logger });
    await backend.write([entry(3)].map(toPending));
    await backend.close();
    assert.equal((await verifyDir(work)).ok, true, 'one chain over three files');

    const record = await purge({ sink: 'file', dir: work, logger }, { reason: 'retention', before: null, cutoff: () => Date.parse('2020-01-02T00:00:00Z') });
    assert.ok(record);
    assert.equal(record.chains[0]!.records, 2);
    assert.deepEqual(record.chains[0]!.files.map((f) => f.file), ['audit-green-2020-01-01.000.jsonl']);
    const names = await readdir(work);
    assert.ok(!names.includes('audit-green-2020-01-01.000.jsonl'));
    assert.ok(names.some((n) => n.startsWith('audit-_purges-')), 'the purge is a record of its own');
    const report = await verifyDir(work);
    assert.equal(report.ok, true, JSON.stringify(report));

    // A file removed by hand, with no purge record: verify says so.
    await rm(path.join(work, 'audit-green-2020-01-02.000.jsonl'));
    const broken = (await verifyDir(work)).chains.find((c) => c.chain === 'green')!;
    assert.match(broken.problem!.reason, /predecessor is missing: records were removed without a purge record/);
  });

  it('purge – `lanegate audit purge --before` removes whole days and records itself', async () => {
    const work = await copyOf(dir);
    copies.push(work);
    const file = await greenFile(work);
    const old = file.replace(/\d{4}-\d{2}-\d{2}/, '2021-06-01');
    await rename(file, old);
    const { code, out } = await cli('audit', 'purge', '--before', '2021-06-02', '--dir', work);
    assert.equal(code, 0, out);
    assert.match(out, /green: \d+ records removed \(1 files\)/);
    assert.ok(!(await readdir(work)).includes(path.basename(old)));
    const purges = (await readdir(work)).find((n) => n.startsWith('audit-_purges-'))!;
    const purgeRecord = JSON.parse((await readFile(path.join(work, purges), 'utf8')).trim().split('\n').at(-1)!) as { kind: string; reason: string };
    assert.equal(purgeRecord.kind, 'purge');
    assert.equal(purgeRecord.reason, 'manual');
    assert.equal((await verifyDir(work)).ok, true);
  });
});
