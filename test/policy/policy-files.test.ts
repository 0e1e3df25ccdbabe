import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ConfigError, loadConfig } from '../../src/config/load.js';
import { ADMIN_KEY, APP_KEY, defaultTestConfig, startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { TEST_POLICIES, WITH_POLICIES } from './fixtures.js';

async function problemsFor(files: Record<string, string>): Promise<ConfigError> {
  const dir = await mkdtemp(path.join(tmpdir(), 'lanegate-policy-'));
  try {
    await mkdir(path.join(dir, 'policies'));
    for (const [name, text] of Object.entries(files)) await writeFile(path.join(dir, 'policies', name), text);
    const configFile = path.join(dir, 'gateway.yaml');
    await writeFile(configFile, defaultTestConfig({}).replaceAll('{{dir}}', dir) + WITH_POLICIES);
    try {
      await loadConfig(configFile, {});
    } catch (err) {
      assert.ok(err instanceof ConfigError, String(err));
      return err;
    }
    throw new Error('expected the policies to be rejected');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

describe('policy files', () => {
  it('policy files – a name defined in two files is an error naming both files', async () => {
    const err = await problemsFor({
      'a.yaml': 'default_lane: green\nlanes:\n  green: { rank: 10 }\n',
      'b.yaml': 'default_lane: amber\nlanes:\n  green: { rank: 11 }\n  amber: { rank: 20 }\n',
    });
    assert.match(err.message, /b\.yaml: lanes\.green: "green" is already defined in .*a\.yaml/);
    assert.match(err.message, /b\.yaml: default_lane: default_lane is already set in .*a\.yaml/);
  });

  it('policy files – cross checks name the rule that is wrong', async () => {
    const err = await problemsFor({
      'a.yaml': `
default_lane: green
tools: { mail: {} }
detectors:
  twice: { pattern: '(a)\\1' }
lanes:
  green:
    rank: 10
    deployments: [nosuchprovider]
    detectors:
      card: { action: escalate, lane: purple }
      email: { action: escalate, lane: amber }
      nosuchdetector: block
    tools: { allow: [mail], deny: [mail, ghost] }
  amber: { rank: 10, detectors: { email: { action: escalate, lane: green } } }
`,
    });
    const text = err.message;
    assert.match(text, /detectors\.twice\.pattern: .*linear time/);
    assert.match(text, /lanes\.green\.deployments\[0\]: unknown provider "nosuchprovider"/);
    assert.match(text, /lanes\.green\.detectors\.card\.lane: unknown lane "purple"/);
    assert.match(text, /lanes\.green\.detectors\.nosuchdetector: unknown detector/);
    assert.match(text, /lanes\.green\.tools\.deny\[1\]: unknown tool "ghost"/);
    assert.match(text, /"mail" is both allowed and denied/);
    assert.match(text, /lanes\.amber\.rank: lane "green" has the same rank/);
    assert.match(text, /lanes\.amber\.detectors\.email\.lane: "green" is not stricter than "amber"/);
  });

  it('policy files – the shipped policies load with the shipped config', async () => {
    const loaded = await loadConfig(path.resolve(import.meta.dirname, '../../config/gateway.yaml'), {});
    assert.deepEqual(Object.keys(loaded.policies.lanes).sort(), ['amber', 'green', 'red']);
    assert.equal(loaded.policies.defaultLane, 'green');
  });
});

describe('policy reload', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startTestGateway({ extra: WITH_POLICIES, files: { 'policies/lanes.yaml': TEST_POLICIES } });
  });
  after(async () => gw.close());

  const reload = () => fetch(`${gw.url}/admin/reload`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN_KEY}` } });
  const ask = (content: string, model = 'fast', stream = false) =>
    fetch(`${gw.baseURL}/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${APP_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model, stream, messages: [{ role: 'user', content }] }),
    });

  it('policy reload – a new rule applies to new requests while in-flight ones finish; a bad file is rejected whole', async () => {
    const file = path.join(gw.dir, 'policies/lanes.yaml');
    const inFlight = await ask('project NIGHTJAR status please', 'slow-stream', true);
    assert.equal(inFlight.status, 200);
    const reader = inFlight.body!.getReader();
    await reader.read();

    const stricter = TEST_POLICIES.replace("ticket_secret: { pattern: 'TOPSECRET-[0-9]{4}' }", "ticket_secret: { pattern: 'TOPSECRET-[0-9]{4}|NIGHTJAR' }");
    await writeFile(file, stricter);
    const ok = await reload();
    assert.equal(ok.status, 200);

    let rest = '';
    const decoder = new TextDecoder();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      rest += decoder.decode(value);
    }
    assert.ok(rest.includes('NIGHTJAR'), 'the in-flight stream finished under the old policy');
    assert.ok(rest.trimEnd().endsWith('[DONE]'));
    assert.equal((await ask('project NIGHTJAR again')).status, 400, 'the new rule blocks new requests');

    await writeFile(file, stricter.replace('rank: 20', 'rank: 10'));
    const bad = await reload();
    assert.equal(bad.status, 422);
    assert.match(((await bad.json()) as { error: { message: string } }).error.message, /same rank/);
    assert.equal((await ask('project NIGHTJAR again')).status, 400, 'the previous policies keep serving');
    assert.equal((await ask('hello')).status, 200);
  });
});
