// The audit trail read back from both ends: GET /admin/audit and `lanegate
// audit list` take the same filters and return the same records, and the
// lane filter finds every chain, the gateway's own `_gateway` included
// (requests refused before a lane was chosen).
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ADMIN_KEY, APP_KEY, OTHER_KEY, startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { AUDIT_POLICIES, auditTestConfig, postJson, waitFor } from './fixtures.js';

import { runCli } from '../helpers/cli.js';

interface Listed {
  id: string;
  kind?: string;
  status?: number;
  integrity?: string;
  bodies?: { mode: string; request: unknown };
}

describe('audit list – admin API and CLI', () => {
  let gw: TestGateway;
  const ids = { green: [] as string[], amber: '', refused: '' };

  before(async () => {
    gw = await startTestGateway({
      yaml: auditTestConfig({ audit: 'audit:\n  sink: file\n  dir: {{dir}}/audit\n  batch_size: 1\n' }),
      files: { 'policies/lanes.yaml': AUDIT_POLICIES },
    });
    const ask = async (key: string, content: string, headers: Record<string, string> = {}) => {
      const res = await postJson(gw, { model: 'fast', messages: [{ role: 'user', content }] }, headers, key);
      await res.text();
      return res.headers.get('x-request-id')!;
    };
    ids.green.push(await ask(APP_KEY, 'one'), await ask(OTHER_KEY, 'two'));
    ids.amber = await ask(APP_KEY, 'amber words', { 'x-gateway-lane': 'amber' });
    // A lane the key may not use: refused before any lane holds the request.
    ids.refused = await ask(APP_KEY, 'where to?', { 'x-gateway-lane': 'no-such-lane' });
    await waitFor('every record on disk', async () => ((await gw.auditRecords()).length >= 4 ? true : undefined));
  });
  after(() => gw.close());

  const api = async (q: string) => {
    const res = await fetch(`${gw.url}/admin/audit?${q}`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } });
    return { status: res.status, body: (await res.json()) as { data: Listed[]; next?: string; error?: { param: string; message: string } } };
  };
  const cli = async (args: string[]) => {
    const out = await runCli(['audit', 'list', ...args, '--config', gw.configFile]);
    return { ...out, data: out.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Listed) };
  };

  it('audit list – the refused request is in the _gateway chain, and lane=_gateway finds it (API and CLI)', async () => {
    const names = await readdir(path.join(gw.dir, 'audit'));
    assert.ok(names.some((n) => n.startsWith('audit-_gateway-')), names.join(', '));
    const fromApi = await api('lane=_gateway');
    assert.equal(fromApi.status, 200);
    assert.deepEqual(fromApi.body.data.map((r) => r.id), [ids.refused]);
    const fromCli = await cli(['--lane', '_gateway']);
    assert.equal(fromCli.code, 0, fromCli.stderr);
    assert.deepEqual(fromCli.data.map((r) => r.id), [ids.refused]);
  });

  it('audit list – every filter gives the same records, bodies and integrity marks from the API and the CLI', async () => {
    const queries: Array<Record<string, string>> = [
      {},
      { lane: 'green' },
      { lane: 'amber' },
      { team: 'team-beta' },
      { app: 'app-alpha', status: '2xx' },
      { status: '4xx' },
      { model: 'fast', kind: 'request' },
      { from: new Date(Date.now() - 60_000).toISOString(), to: String(Date.now()) },
      { limit: '2' },
    ];
    for (const q of queries) {
      const fromApi = await api(new URLSearchParams(q).toString());
      const fromCli = await cli(Object.entries(q).flatMap(([k, v]) => [`--${k}`, v]));
      assert.equal(fromCli.code, 0, fromCli.stderr);
      assert.ok(fromApi.body.data.length > 0, JSON.stringify(q));
      assert.deepEqual(fromCli.data, fromApi.body.data, JSON.stringify(q));
      if (fromApi.body.next) assert.match(fromCli.stderr, new RegExp(`next: --after ${fromApi.body.next}`));
    }
    const rest = await cli(['--limit', '2', '--after', (await api('limit=2')).body.next!]);
    assert.deepEqual(rest.data.map((r) => r.id), (await api(`limit=2&after=${(await api('limit=2')).body.next}`)).body.data.map((r) => r.id));
  });

  it('audit show – one record by id, as GET /admin/audit/{id} returns it; an unknown id exits 1', async () => {
    const res = await fetch(`${gw.url}/admin/audit/${ids.amber}`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } });
    const shown = await runCli(['audit', 'show', ids.amber, '--config', gw.configFile]);
    assert.equal(shown.code, 0, shown.stderr);
    assert.deepEqual(JSON.parse(shown.stdout), await res.json());
    const missing = await runCli(['audit', 'show', '00000000-0000-0000-0000-000000000000', '--config', gw.configFile]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /No audit record/);
  });

  it('audit list – a bad filter is refused the same way by both: the API names the param, the CLI the flag', async () => {
    for (const [name, value] of [['status', '42'], ['limit', '0'], ['from', 'yesterday'], ['after', '!!']] as const) {
      const fromApi = await api(`${name}=${encodeURIComponent(value)}`);
      assert.equal(fromApi.status, 400);
      assert.equal(fromApi.body.error!.param, name);
      const fromCli = await cli([`--${name}`, value]);
      assert.equal(fromCli.code, 2);
      assert.equal(fromCli.stderr.trim(), `--${name}: ${fromApi.body.error!.message}`);
    }
  });
});
