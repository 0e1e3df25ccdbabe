import assert from 'node:assert/strict';
import { readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ADMIN_KEY, APP_KEY, OTHER_KEY, startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { AUDIT_POLICIES, auditTestConfig, postJson, recordOf, type ErrorBody } from './fixtures.js';

/** A record as the admin API returns it: the fields these tests read. */
interface Listed {
  id: string;
  time: string;
  bodies: { mode: string; request: unknown; response: unknown; request_sha256: string | null; restricted_from?: string };
}

describe('audit query (file sink)', () => {
  let gw: TestGateway;
  const ids = { alphaGreen: [] as string[], betaGreen: [] as string[], amber: '', failed: '' };
  let startedAt = 0;

  before(async () => {
    // A tiny rotation size: the records spread over several files, most of them closed and indexed.
    gw = await startTestGateway({
      yaml: auditTestConfig({ audit: 'audit:\n  sink: file\n  dir: {{dir}}/audit\n  rotate_bytes: 4096\n  batch_size: 1\n' }),
      files: { 'policies/lanes.yaml': AUDIT_POLICIES },
    });
    startedAt = Date.now();
    const ask = async (key: string, content: string, headers: Record<string, string> = {}, model = 'fast') => {
      const res = await postJson(gw, { model, messages: [{ role: 'user', content }] }, headers, key);
      await res.text();
      return res.headers.get('x-request-id')!;
    };
    for (let i = 0; i < 8; i++) ids.alphaGreen.push(await ask(APP_KEY, `alpha says ${i} ${'.'.repeat(600)}`));
    for (let i = 0; i < 3; i++) ids.betaGreen.push(await ask(OTHER_KEY, `beta says ${i}`));
    ids.amber = await ask(APP_KEY, 'amber words', { 'x-gateway-lane': 'amber' });
    ids.failed = await ask(APP_KEY, 'to nowhere', {}, 'no-such-model');
    await recordOf(gw, ids.failed);
  });
  after(() => gw.close());

  const admin = (p: string, key = ADMIN_KEY) => fetch(`${gw.url}${p}`, { headers: { authorization: `Bearer ${key}` } });
  const list = async (q: string) => {
    const res = await admin(`/admin/audit?${q}`);
    assert.equal(res.status, 200, await res.clone().text());
    return (await res.json()) as { data: Listed[]; next?: string };
  };

  it('query – records spread over rotated files, each closed one with its index beside it', async () => {
    const names = await readdir(path.join(gw.dir, 'audit'));
    const green = names.filter((n) => n.startsWith('audit-green-') && n.endsWith('.jsonl'));
    assert.ok(green.length >= 3, names.join(', '));
    assert.equal(names.filter((n) => n.startsWith('audit-green-') && n.endsWith('.idx')).length, green.length - 1, 'every closed file has an index');
  });

  it('query – GET /admin/audit/{id} returns the record; the admin key is required; unknown ids are 404', async () => {
    for (const id of [ids.alphaGreen[0]!, ids.alphaGreen[7]!, ids.amber]) {
      const res = await admin(`/admin/audit/${id}`);
      assert.equal(res.status, 200);
      assert.equal(((await res.json()) as Listed).id, id);
    }
    assert.equal((await admin(`/admin/audit/${ids.amber}`, APP_KEY)).status, 401);
    const missing = await admin('/admin/audit/00000000-0000-0000-0000-000000000000');
    assert.equal(missing.status, 404);
    assert.equal(((await missing.json()) as ErrorBody).error.code, 'not_found');
  });

  it('query – filters by team, app, lane, model, status and time, in time order', async () => {
    assert.deepEqual((await list('team=team-beta')).data.map((r) => r.id), ids.betaGreen);
    assert.deepEqual((await list('app=app-alpha&lane=green&status=2xx')).data.map((r) => r.id), ids.alphaGreen);
    assert.deepEqual((await list('lane=amber')).data.map((r) => r.id), [ids.amber]);
    assert.deepEqual((await list('status=4xx')).data.map((r) => r.id), [ids.failed]);
    assert.deepEqual((await list('status=404')).data.map((r) => r.id), [ids.failed]);
    assert.equal((await list('model=fast')).data.length, 12);
    assert.equal((await list(`from=${new Date(startedAt - 60_000).toISOString()}&to=${Date.now()}`)).data.length, 13);
    assert.equal((await list(`to=${startedAt - 60_000}`)).data.length, 0);
    const all = (await list('limit=1000')).data;
    const times = all.map((r) => Date.parse(r.time));
    assert.deepEqual(times, [...times].sort((a, b) => a - b));
  });

  it('query – pages with limit and next cover everything once', async () => {
    const seen: string[] = [];
    let page = await list('lane=green&limit=4');
    for (;;) {
      assert.ok(page.data.length <= 4);
      seen.push(...page.data.map((r) => r.id));
      if (!page.next) break;
      page = await list(`lane=green&limit=4&after=${page.next}`);
    }
    assert.deepEqual(seen.sort(), [...ids.alphaGreen, ...ids.betaGreen, ids.failed].sort(), 'the unknown-model request was in green too');
  });

  it('query – bad parameters are 400s that name the parameter', async () => {
    for (const [q, param] of [
      ['status=abc', 'status'],
      ['limit=0', 'limit'],
      ['from=yesterday', 'from'],
      ['after=%%%', 'after'],
    ] as const) {
      const res = await admin(`/admin/audit?${q}`);
      assert.equal(res.status, 400, q);
      assert.equal(((await res.json()) as ErrorBody).error.param, param);
    }
  });

  it('query – results respect the lane’s body handling now: a lane made stricter hides bodies it used to keep', async () => {
    const before = (await (await admin(`/admin/audit/${ids.alphaGreen[0]}`)).json()) as Listed;
    assert.equal(before.bodies.mode, 'full');
    assert.ok(JSON.stringify(before.bodies.request).includes('alpha says 0'));

    await writeFile(path.join(gw.dir, 'policies', 'lanes.yaml'), AUDIT_POLICIES.replace('audit: { bodies: full, retention_days: 30 }', 'audit: { bodies: hash, retention_days: 30 }'));
    const reload = await fetch(`${gw.url}/admin/reload`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN_KEY}` } });
    assert.equal(reload.status, 200, await reload.text());
    const now = (await (await admin(`/admin/audit/${ids.alphaGreen[0]}`)).json()) as Listed;
    assert.equal(now.bodies.mode, 'hash');
    assert.equal(now.bodies.restricted_from, 'full');
    assert.equal(now.bodies.request, null);
    assert.equal(now.bodies.response, null);
    assert.equal(now.bodies.request_sha256, before.bodies.request_sha256);
    const listed = (await list('team=team-alpha&lane=green&limit=1')).data[0]!;
    assert.equal(listed.bodies.request, null);
  });
});
