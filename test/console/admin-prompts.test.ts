// Prompt promote and rollback through the admin API, per role, and the
// `people:` config checks.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { hashKey } from '../../src/auth/keys.js';
import { ADMIN_KEY, APP_KEY } from '../helpers/gateway.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { postChat } from '../helpers/routing.js';
import { loadWith, promptConfig, SHIPPED } from '../prompts/fixtures.js';

const OPS = 'sk-person-olga-admin-00000000001';
const FINANCE = 'sk-person-fred-finance-00000003';
const people = `people:
  - { name: Olga, role: admin, sha256: ${hashKey(OPS)} }
  - { name: Fred, role: finance, sha256: ${hashKey(FINANCE)} }
`;

describe('prompt pins through the admin API', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startTestGateway({ yaml: promptConfig({ rest: people }), files: SHIPPED });
  });
  after(() => gw.close());

  const post = (key: string, path: string, body?: unknown) =>
    fetch(`${gw.url}${path}`, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, ...(body ? { body: JSON.stringify(body) } : {}) });
  const served = async () => {
    const res = await postChat(gw, { model: 'prompt:triage', messages: [], variables: { ticket: 'Which version?' } });
    await res.arrayBuffer();
    return res.headers.get('x-gateway-prompt-version');
  };

  it('rollback – finance is refused; an admin rolls back, the next request gets the previous version, recorded with who', async () => {
    assert.equal((await post(FINANCE, '/admin/prompts/triage/rollback')).status, 403);
    assert.equal(await served(), 'triage@v2');
    const res = await post(OPS, '/admin/prompts/triage/rollback', { note: 'bad routing' });
    assert.equal(res.status, 200);
    const body = (await res.json()) as { from: string; to: string; recorded: { ok: boolean } };
    assert.deepEqual([body.from, body.to, body.recorded.ok], ['v2', 'v1', true]);
    assert.equal(await served(), 'triage@v1');
    const record = (await gw.auditRecords()).find((r) => r.kind === 'prompt_rollback')!;
    assert.deepEqual([record.by, record.by_role, record.note], ['Olga', 'admin', 'bad routing']);
    const again = await post(OPS, '/admin/prompts/triage/rollback');
    assert.equal(again.status, 400, 'no earlier version left');
  });

  it('promote – refused while no eval report of the version passed the gate; the pin stays', async () => {
    const res = await post(ADMIN_KEY, '/admin/prompts/triage/v2/promote');
    assert.equal(res.status, 400);
    assert.match(((await res.json()) as { error: { message: string } }).error.message, /eval gate has not passed/);
    assert.equal(await served(), 'triage@v1');
    assert.equal((await post(APP_KEY, '/admin/prompts/triage/v2/promote')).status, 401);
  });
});

describe('people in the config', () => {
  it('config – a person needs exactly one of sha256 and key, a unique name, and a key of their own', async () => {
    const both = await loadWith(SHIPPED, promptConfig({ rest: `people:\n  - { name: A, role: admin, sha256: ${hashKey(OPS)}, key: ${OPS} }\n` }));
    assert.match(both.error!.message, /exactly one of sha256/);
    const twice = await loadWith(SHIPPED, promptConfig({ rest: `people:\n  - { name: A, role: admin, sha256: ${hashKey(OPS)} }\n  - { name: A, role: finance, sha256: ${hashKey(FINANCE)} }\n` }));
    assert.match(twice.error!.message, /duplicate person name "A"/);
    const appKey = await loadWith(SHIPPED, promptConfig({ rest: `people:\n  - { name: A, role: auditor, sha256: ${hashKey(APP_KEY)} }\n` }));
    assert.match(appKey.error!.message, /must not also be an app key/);
    const role = await loadWith(SHIPPED, promptConfig({ rest: `people:\n  - { name: A, role: owner, sha256: ${hashKey(OPS)} }\n` }));
    assert.match(role.error!.message, /people\[0\]\.role/);
    const ok = await loadWith(SHIPPED, promptConfig({ rest: people }));
    assert.equal(ok.error, undefined);
  });
});
