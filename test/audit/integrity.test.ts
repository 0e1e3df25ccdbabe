// Reading a record checks it: a record edited where it is stored (a JSONL
// line on disk, a Redis stream entry) is served flagged by /admin/audit/{id},
// the audit query and /admin/usage, and untouched records are not.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { ADMIN_KEY, startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';
import { AUDIT_POLICIES, auditTestConfig, postJson, waitFor } from './fixtures.js';

interface Served {
  id: string;
  integrity?: string;
  integrity_reason?: string;
}
interface ListBody {
  data: Served[];
  integrity: { checked: number; mismatched: number };
}
interface UsageBody {
  total: { requests: number; nano_usd: number };
  integrity: { mismatched: number; ids: string[]; claimed_nano_usd: number };
}

/** Changes a line in place, keeping its length: an edit the index cannot notice, only the hash. */
function editCost(line: string): string {
  return line.replace(/"nano_usd":(\d+)/, (_, n: string) => `"nano_usd":${n.slice(0, -1)}${n.endsWith('9') ? '8' : '9'}`);
}
function editBody(line: string): string {
  return line.replace('please keep me', 'please edit me');
}

async function ask(gw: TestGateway, content: string): Promise<string> {
  const res = await postJson(gw, { model: 'fast', messages: [{ role: 'user', content }] });
  assert.equal(res.status, 200);
  await res.text();
  return res.headers.get('x-request-id')!;
}

/** Checks the three endpoints against one gateway whose records `costEdited` and `bodyEdited` were changed. */
async function assertFlagged(gw: TestGateway, ids: { costEdited: string; bodyEdited: string; untouched: string[] }): Promise<void> {
  const admin = async <T>(p: string) => {
    const res = await fetch(`${gw.url}${p}`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } });
    assert.equal(res.status, 200, p);
    return { body: (await res.json()) as T, headers: res.headers };
  };
  for (const id of [ids.costEdited, ids.bodyEdited]) {
    const { body } = await admin<Served>(`/admin/audit/${id}`);
    assert.equal(body.integrity, 'mismatch', id);
    assert.match(body.integrity_reason ?? '', /does not match its hash/);
  }
  for (const id of ids.untouched) assert.equal((await admin<Served>(`/admin/audit/${id}`)).body.integrity, 'ok');

  const { body: list } = await admin<ListBody>('/admin/audit?kind=request&limit=100');
  const flagged = list.data.filter((r) => r.integrity === 'mismatch').map((r) => r.id);
  assert.deepEqual(flagged.sort(), [ids.costEdited, ids.bodyEdited].sort());
  assert.equal(list.integrity.mismatched, 2);
  assert.equal(list.integrity.checked, list.data.length);
  assert.ok(list.data.filter((r) => ids.untouched.includes(r.id)).every((r) => r.integrity === 'ok'));

  const { body: usage, headers } = await admin<UsageBody>('/admin/usage?group_by=team');
  assert.equal(usage.integrity.mismatched, 2);
  assert.deepEqual(usage.integrity.ids.sort(), [ids.costEdited, ids.bodyEdited].sort());
  assert.equal(usage.total.requests, ids.untouched.length, 'the changed records are not in the totals');
  assert.equal(headers.get('x-lanegate-integrity-mismatched'), '2');
  const csv = await (await fetch(`${gw.url}/admin/usage?group_by=team&format=csv`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } })).text();
  assert.match(csv, /\nEXCLUDED: records failing their hash check,2,/);
}

describe('audit integrity on read (file sink)', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startTestGateway({ yaml: auditTestConfig(), files: { 'policies/lanes.yaml': AUDIT_POLICIES } });
  });
  after(() => gw.close());

  it('integrity – a JSONL record edited on disk (cost or body) is flagged by /admin/audit/{id}, the audit query and /admin/usage; untouched ones are not', async () => {
    const ids = [await ask(gw, 'please keep me 1'), await ask(gw, 'please keep me 2'), await ask(gw, 'please keep me 3'), await ask(gw, 'please keep me 4')];
    await gw.gateway.audit.flush();
    const dir = path.join(gw.dir, 'audit');
    const file = path.join(dir, (await readdir(dir)).find((n) => n.startsWith('audit-green-') && n.endsWith('.jsonl'))!);
    const lines = (await readFile(file, 'utf8')).split('\n');
    const at = (id: string) => lines.findIndex((l) => l.includes(`"id":"${id}"`));
    const costAt = at(ids[0]!);
    const bodyAt = at(ids[1]!);
    const edited = [editCost(lines[costAt]!), editBody(lines[bodyAt]!)];
    assert.notEqual(edited[0], lines[costAt]);
    assert.notEqual(edited[1], lines[bodyAt]);
    lines[costAt] = edited[0]!;
    lines[bodyAt] = edited[1]!;
    await writeFile(file, lines.join('\n'));
    await assertFlagged(gw, { costEdited: ids[0]!, bodyEdited: ids[1]!, untouched: [ids[2]!, ids[3]!] });
  });
});

/** Edits a sealed line's cost and seals it again with a fresh hash over the same prev: its own hash check passes. */
function editCostAndRehash(line: string): string {
  const seal = /,"hash":"[0-9a-f]{64}"\}$/.exec(line)!;
  const body = `${editCost(line.slice(0, seal.index))}}`;
  return `${body.slice(0, -1)},"hash":"${createHash('sha256').update(body).digest('hex')}"}`;
}

describe('audit integrity on read (file sink, hash recomputed)', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startTestGateway({ yaml: auditTestConfig(), files: { 'policies/lanes.yaml': AUDIT_POLICIES } });
  });
  after(() => gw.close());

  it('integrity – a JSONL record edited and given a matching hash is flagged by its successor’s prev on every read, and left out of /admin/usage', async () => {
    const ids = [await ask(gw, 'please keep me 1'), await ask(gw, 'please keep me 2'), await ask(gw, 'please keep me 3')];
    await gw.gateway.audit.flush();
    const dir = path.join(gw.dir, 'audit');
    const file = path.join(dir, (await readdir(dir)).find((n) => n.startsWith('audit-green-') && n.endsWith('.jsonl'))!);
    const lines = (await readFile(file, 'utf8')).split('\n');
    const at = lines.findIndex((l) => l.includes(`"id":"${ids[0]}"`));
    assert.ok(at >= 0 && at < lines.length - 2, 'a record follows the edited one');
    lines[at] = editCostAndRehash(lines[at]!);
    await writeFile(file, lines.join('\n'));

    const admin = async <T>(p: string) => (await (await fetch(`${gw.url}${p}`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } })).json()) as T;
    const one = await admin<Served>(`/admin/audit/${ids[0]}`);
    assert.equal(one.integrity, 'mismatch');
    assert.match(one.integrity_reason ?? '', /next record in its chain does not point at it/);
    for (const id of ids.slice(1)) assert.equal((await admin<Served>(`/admin/audit/${id}`)).integrity, 'ok', id);
    const list = await admin<ListBody>('/admin/audit?kind=request&limit=100');
    assert.deepEqual(list.data.filter((r) => r.integrity === 'mismatch').map((r) => r.id), [ids[0]]);
    const usage = await admin<UsageBody>('/admin/usage?group_by=team');
    assert.deepEqual(usage.integrity.ids, [ids[0]]);
    assert.equal(usage.total.requests, 2, 'the rewritten record is not in the totals');
  });
});

describe('audit integrity on read (Redis Streams sink)', () => {
  let redis: TestRedis;
  let gw: TestGateway;
  let raw: Redis;
  const STREAM = 'integrity-test:v1:audit:{green}';
  before(async () => {
    redis = await startRedis();
    raw = new Redis(redis.url, { maxRetriesPerRequest: 1 });
    gw = await startTestGateway({
      yaml: auditTestConfig({ audit: 'audit:\n  sink: redis\n  dir: {{dir}}/audit\n', extra: `redis: { url: "${redis.url}", key_prefix: integrity-test }` }),
      files: { 'policies/lanes.yaml': AUDIT_POLICIES },
    });
  });
  after(async () => {
    await gw.close();
    raw.disconnect();
    await redis.stop();
  });

  it('integrity – a stream entry edited in Redis (cost or body) is flagged by /admin/audit/{id}, the audit query and /admin/usage; untouched ones are not', async () => {
    const ids = [await ask(gw, 'please keep me 1'), await ask(gw, 'please keep me 2'), await ask(gw, 'please keep me 3')];
    await gw.gateway.audit.flush();
    await waitFor('three entries', async () => ((await raw.xlen(STREAM)) >= 3 ? true : undefined));
    // A stream entry cannot be changed in place: the edit is a copy with the same id, as XADD can write it.
    const entries = (await raw.xrange(STREAM, '-', '+')) as Array<[string, string[]]>;
    await raw.del(STREAM);
    for (const [entryId, fields] of entries) {
      const record = fields[fields.indexOf('record') + 1]!;
      const edited = record.includes(`"id":"${ids[0]}"`) ? editCost(record) : record.includes(`"id":"${ids[1]}"`) ? editBody(record) : record;
      const copy = [...fields];
      copy[copy.indexOf('record') + 1] = edited;
      await raw.xadd(STREAM, entryId, ...copy);
    }
    await assertFlagged(gw, { costEdited: ids[0]!, bodyEdited: ids[1]!, untouched: [ids[2]!] });
  });
});
