import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, truncate, unlink, writeFile } from 'node:fs/promises';
import { statfsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it, type TestContext } from 'node:test';
import { openSpool } from '../../src/audit/transport/spool.js';
import { verifyDir } from '../../src/audit/read/verify.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { AUDIT_POLICIES, auditTestConfig, metricSum, postJson, waitFor } from './fixtures.js';

async function ask(gw: TestGateway, content: string, headers: Record<string, string> = {}): Promise<Response> {
  const res = await postJson(gw, { model: 'fast', messages: [{ role: 'user', content }] }, headers);
  await res.text();
  return res;
}

async function files(dir: string, lane = 'green'): Promise<string[]> {
  return (await readdir(dir)).filter((n) => n.startsWith(`audit-${lane}-`) && n.endsWith('.jsonl')).sort();
}

describe('audit files changed under the running gateway', () => {
  let gw: TestGateway;
  let dir: string;
  before(async () => {
    gw = await startTestGateway({ yaml: auditTestConfig(), files: { 'policies/lanes.yaml': AUDIT_POLICIES } });
    dir = path.join(gw.dir, 'audit');
  });
  after(() => gw.close());

  it('faults – a deleted audit file is noticed: a new file is started, the log says so, verify reports the gap', async () => {
    await ask(gw, 'before the deletion');
    await gw.gateway.audit.flush();
    const [first] = await files(dir);
    assert.ok(first);
    await unlink(path.join(dir, first));
    const res = await ask(gw, 'after the deletion');
    assert.equal(res.status, 200);
    await gw.gateway.audit.flush();
    const now = await files(dir);
    assert.equal(now.length, 1);
    assert.notEqual(now[0], first, 'a new file, never the deleted name again');
    assert.match(gw.logs(), /audit file deleted while the gateway was writing it/);
    assert.ok((await gw.auditRecords()).some((r) => r.id === res.headers.get('x-request-id')), 'the record after the deletion is on disk');
    const green = (await verifyDir(dir)).chains.find((c) => c.chain === 'green')!;
    assert.match(green.problem?.reason ?? '', /predecessor is missing/);
  });

  it('faults – a truncated audit file is noticed and writing goes on in a new file', async () => {
    await ask(gw, 'fill a little');
    await gw.gateway.audit.flush();
    const before = await files(dir);
    await truncate(path.join(dir, before.at(-1)!), 0);
    const res = await ask(gw, 'after the truncation');
    await gw.gateway.audit.flush();
    const after = await files(dir);
    assert.equal(after.length, before.length + 1);
    assert.match(gw.logs(), /audit file truncated while the gateway was writing it/);
    assert.ok((await gw.auditRecords()).some((r) => r.id === res.headers.get('x-request-id')));
  });

  it('shutdown – every record queued when the gateway stops is on disk afterwards', async () => {
    const other = await startTestGateway({ yaml: auditTestConfig(), files: { 'policies/lanes.yaml': AUDIT_POLICIES } });
    const ids: string[] = [];
    await Promise.all(
      Array.from({ length: 40 }, async (_, i) => {
        const res = await ask(other, `burst ${i}`);
        ids.push(res.headers.get('x-request-id')!);
      }),
    );
    await other.gateway.shutdown();
    const onDisk = new Set<unknown>();
    const auditDir = path.join(other.dir, 'audit');
    for (const name of await files(auditDir)) {
      const { readFile } = await import('node:fs/promises');
      for (const line of (await readFile(path.join(auditDir, name), 'utf8')).split('\n').filter(Boolean)) onDisk.add((JSON.parse(line) as { id: string }).id);
    }
    for (const id of ids) assert.ok(onDisk.has(id), `record ${id} on disk`);
    assert.equal((await verifyDir(auditDir)).ok, true);
    await rm(other.dir, { recursive: true, force: true });
  });
});

/** A small tmpfs, so "disk full" is a real ENOSPC. Needs root (mount). */
async function smallDisk(t: TestContext, megabytes: number): Promise<string | undefined> {
  const mnt = await mkdtemp(path.join(tmpdir(), 'lanegate-fulldisk-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${megabytes}m`, 'tmpfs', mnt], { stdio: 'pipe' });
  } catch (err) {
    await rm(mnt, { recursive: true, force: true });
    t.skip(`cannot mount a tmpfs to fill (needs root): ${String((err as Error).message).split('\n')[0]}`);
    return undefined;
  }
  t.after(async () => {
    execFileSync('umount', ['-l', mnt]);
    await rm(mnt, { recursive: true, force: true });
  });
  return mnt;
}

/** Fills the disk to leave about `leave` bytes free. */
async function fill(mnt: string, leave: number): Promise<string> {
  const s = statfsSync(mnt);
  const free = s.bavail * s.bsize;
  const filler = path.join(mnt, 'filler');
  await writeFile(filler, Buffer.alloc(Math.max(0, free - leave)));
  return filler;
}

describe('audit on a full disk', () => {
  const big = 'x'.repeat(20_000);

  it('disk full – on_full: serve keeps answering, counts every lost record and says why in the log', async (t) => {
    const mnt = await smallDisk(t, 4);
    if (!mnt) return;
    await mkdir(path.join(mnt, 'audit'));
    const gw = await startTestGateway({
      yaml: auditTestConfig({ audit: `audit:\n  sink: file\n  dir: ${mnt}/audit\n  spool: { dir: ${mnt}/spool }\n  on_full: serve\n` }),
      files: { 'policies/lanes.yaml': AUDIT_POLICIES },
    });
    t.after(() => gw.close());
    await fill(mnt, 60_000);
    for (let i = 0; i < 8; i++) assert.equal((await ask(gw, `${i} ${big}`)).status, 200, 'served whatever the disk says');
    await gw.gateway.audit.flush();
    assert.ok((await metricSum(gw, 'lanegate_audit_dropped_total', { reason: 'disk_full' })) > 0);
    assert.match(gw.logs(), /audit sink failing \(disk full\)/);
    assert.match(gw.logs(), /AUDIT RECORDS LOST \(disk_full: disk full\): the gateway keeps serving/);
    assert.equal(await metricSum(gw, 'lanegate_audit_refusing'), 0);
    // What did reach the disk is whole: no torn line was left behind.
    assert.equal((await verifyDir(path.join(mnt, 'audit'))).ok, true);
  });

  it('disk full – a spool write the disk takes only part of fails whole: no torn record is kept as spooled', async (t) => {
    const mnt = await smallDisk(t, 4);
    if (!mnt) return;
    const spool = await openSpool({ dir: path.join(mnt, 'spool'), maxBytes: 64 * 1024 * 1024 });
    t.after(() => spool.close());
    const record = (id: string) => ({
      chain: 'green',
      bytes: Buffer.from(JSON.stringify({ v: 2, kind: 'request', id, time: new Date().toISOString(), pad: big.repeat(3) })),
      facets: { id, time: Date.now(), kind: 'request', team: null, app: null, lane: 'green', model: null, status: 200 },
    });
    // Room for the first record and part of the second: the disk takes what fits, then refuses the rest.
    await fill(mnt, 100_000);
    await spool.append([record('a')]);
    await assert.rejects(spool.append([record('b')]), (err: NodeJS.ErrnoException) => err.code === 'ENOSPC');
    assert.equal(spool.records(), 1);
    const { items } = (await spool.oldest())!;
    assert.deepEqual(items.map((i) => i.facets.id), ['a']);
    const segments = (await readdir(path.join(mnt, 'spool'))).filter((n) => n.endsWith('.spool'));
    const text = await readFile(path.join(mnt, 'spool', segments[0]!), 'utf8');
    assert.ok(text.endsWith('}\n') && text.split('\n').length === 2, 'the segment holds the first record only, whole');
  });

  it('disk full – on_full: refuse answers 503 audit_unavailable until records can be kept again', async (t) => {
    const mnt = await smallDisk(t, 4);
    if (!mnt) return;
    const gw = await startTestGateway({
      yaml: auditTestConfig({ audit: `audit:\n  sink: file\n  dir: ${mnt}/audit\n  spool: { dir: ${mnt}/spool }\n  on_full: refuse\n` }),
      files: { 'policies/lanes.yaml': AUDIT_POLICIES },
    });
    t.after(() => gw.close());
    const filler = await fill(mnt, 60_000);
    const refused = await waitFor('a refusal', async () => {
      const res = await postJson(gw, { model: 'fast', messages: [{ role: 'user', content: big }] });
      const body = (await res.json()) as { error?: { code: string } };
      await gw.gateway.audit.flush();
      return res.status === 503 ? { res, body } : undefined;
    });
    assert.equal(refused.body.error?.code, 'audit_unavailable');
    assert.equal(refused.res.headers.get('retry-after'), '1');
    assert.equal(await metricSum(gw, 'lanegate_audit_refusing'), 1);
    assert.match(gw.logs(), /new requests are refused until records can be kept again/);
    assert.ok((await metricSum(gw, 'lanegate_audit_refused_requests_total')) >= 1);

    await unlink(filler);
    const ok = await waitFor('service again', async () => ((await ask(gw, 'room again')).status === 200 ? true : undefined), 15_000);
    assert.equal(ok, true);
    assert.equal(await metricSum(gw, 'lanegate_audit_refusing'), 0);
  });
});
