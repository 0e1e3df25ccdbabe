import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { ConfigProblem } from '../../src/config/load.js';
import { loadPolicies } from '../../src/policy/load.js';
import { recipientViolation, type RecipientRule } from '../../src/policy/recipients.js';
import { startFakeOpenAI, type FakeOpenAI } from '../helpers/fake-openai.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';

const POLICIES = `
default_lane: mail
tools:
  send_email: {}
lanes:
  mail:
    rank: 10
    deployments: ["*"]
    tools:
      recipients: { allow_domains: [example.com, "*.example.com"], allow_addresses: [boss@partner.org], max: 3 }
`;

describe('recipients – through the gateway', () => {
  let upstream: FakeOpenAI;
  let gw: TestGateway;
  before(async () => {
    upstream = await startFakeOpenAI();
    gw = await startTestGateway({ openaiUrl: upstream.url, extra: 'policies: { dir: ./policies }\n', files: { 'policies/lanes.yaml': POLICIES } });
  });
  after(async () => {
    await gw.close();
    await upstream.close();
  });

  const tool = { type: 'function' as const, function: { name: 'send_email', parameters: { type: 'object' } } };

  /** Has the model call send_email with `args`; returns the reason it was blocked, or undefined if the app got the call. */
  async function call(args: unknown): Promise<string | undefined> {
    const encoded = Buffer.from(JSON.stringify(args)).toString('base64');
    const { data, response } = await gw
      .client()
      .chat.completions.create({ model: 'gpt-fake', tools: [tool], messages: [{ role: 'user', content: `use tool send_email args64:${encoded}` }] })
      .withResponse();
    const blocked = (data as unknown as { gateway?: { blocked_tool_calls?: Array<{ reason: string }> } }).gateway?.blocked_tool_calls;
    if (response.headers.get('x-gateway-tool-calls-blocked') === '1') {
      assert.equal(data.choices[0]!.message.tool_calls, undefined, 'a blocked call does not reach the app');
      return blocked![0]!.reason;
    }
    assert.deepEqual(JSON.parse(data.choices[0]!.message.tool_calls![0]!.type === 'function' ? data.choices[0]!.message.tool_calls![0]!.function.arguments : '{}'), args);
    return undefined;
  }

  it('recipients – an address with a second "@" is refused, not read as its last domain', async () => {
    assert.match((await call({ to: 'attacker@evil.com@example.com' })) ?? 'passed', /not a list of e-mail addresses/);
  });

  it('recipients – an address inside a quoted display name is not the recipient; the angle address is', async () => {
    assert.match((await call({ to: '"Boss <boss@example.com>" <y@evil.com>' })) ?? 'passed', /evil\.com/);
    assert.match((await call({ to: '"x@example.com" <y@evil.com>' })) ?? 'passed', /evil\.com/);
    assert.equal(await call({ to: '"Doe, Jane (x@evil.com)" <jane@example.com>' }), undefined);
  });

  it('recipients – every address of a list or group is checked and counted', async () => {
    assert.match((await call({ to: 'a@example.com, b@evil.com' })) ?? 'passed', /evil\.com/);
    assert.equal(await call({ to: '"Doe, Jane" <jane@example.com>', cc: ['boss@partner.org'] }), undefined);
    assert.match((await call({ to: 'team: a@example.com, b@mail.example.com, c@example.com, d@example.com;' })) ?? 'passed', /names 4 recipients; lane mail allows at most 3/);
  });

  it('recipients – values that are not addresses are refused', async () => {
    assert.match((await call({ to: 42 })) ?? 'passed', /to value is a number/);
    assert.match((await call({ to: [{ name: 'Eve', mail: 'eve@evil.com' }] })) ?? 'passed', /without an email or address field/);
    assert.match((await call({ cc: 'nobody' })) ?? 'passed', /cc value is not a list of e-mail addresses/);
  });

  it('recipients – a recipient field spelled in another case is checked too', async () => {
    assert.match((await call({ To: 'y@evil.com' })) ?? 'passed', /evil\.com/);
    assert.match((await call({ to: 'a@example.com', BCC: ['y@evil.com'] })) ?? 'passed', /evil\.com/);
    assert.equal(await call({ To: 'a@example.com' }), undefined);
  });

  it('recipients – domains compare in ASCII and lower case, full-width and mixed case included', async () => {
    assert.equal(await call({ to: 'Jane <Jane@EXAMPLE.com>', bcc: 'a@ｅｘａｍｐｌｅ.com' }), undefined);
    assert.equal(await call({ to: { email: 'Boss@Partner.ORG' } }), undefined);
  });
});

describe('recipients – the parser', () => {
  const rule: RecipientRule = { fields: ['to', 'cc', 'bcc', 'recipients'], allow_domains: ['example.com', '*.example.com', 'xn--bcher-kva.example'], allow_addresses: ['boss@partner.org'], max: 5 };
  const judge = (args: unknown): string | undefined => recipientViolation(rule, args, { tool: 'send_email', lane: 'mail' });

  it('parser – display names, quoted local parts, comments, ";" lists and groups are understood', () => {
    for (const to of [
      'Jane Doe <jane@example.com>',
      'J. R. Doe <jr@example.com>',
      '"john..doe"@example.com',
      '"a,b"@example.com (work), x@sub.example.com',
      'a@example.com; b@example.com',
      'team: a@example.com, b@example.com;',
      'x@bücher.example, y@xn--bcher-kva.example',
      ['a@example.com', { address: 'b@example.com' }, { email: 'boss@partner.org' }],
      '',
    ]) {
      assert.equal(judge({ to }), undefined, JSON.stringify(to));
    }
    assert.equal(judge({ to: null, cc: [] }), undefined);
  });

  it('parser – refuses what it cannot parse, domain literals and what only looks allowed', () => {
    const cases: Array<[unknown, RegExp]> = [
      ['attacker@evil.com@example.com', /not a list/],
      ['a@example.com b@evil.com', /not a list/],
      ['a@[127.0.0.1]', /not a list/],
      ['a@example', /not a list/],
      ['a@example.com (x (y) z)', /not a list/],
      ['team: a@example.com, b@evil.com;', /at evil\.com/],
      ['x@example.com.evil.com', /at example\.com\.evil\.com/],
      ['x@notexample.com', /at notexample\.com/],
      [true, /is a boolean/],
      [[[[[['a@example.com']]]]], /nests lists too deeply/],
      ['a@example.com, '.repeat(40) + 'b@example.com', /longer than the 512 characters/],
      [Array.from({ length: 8 }, () => `${'a'.repeat(300)}@example.com`), /longer than the 2048 characters/],
    ];
    for (const [to, reason] of cases) assert.match(judge({ to }) ?? 'passed', reason, JSON.stringify(to).slice(0, 80));
  });

  it('parser – the reason names the domain, never the whole address', () => {
    assert.equal(judge({ to: 'secret.person@evil.com' }), '"send_email" sends to a recipient at evil.com, which lane mail does not allow');
  });
});

describe('recipients – policy side', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'lanegate-recipients-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('policy – allow_domains and allow_addresses are put in ASCII lower case at load; non-addresses are load errors', async () => {
    await writeFile(
      path.join(dir, 'lanes.yaml'),
      `default_lane: x
lanes:
  x:
    rank: 1
    tools:
      recipients: { allow_domains: [Bücher.Example, "*.EXAMPLE.com"], allow_addresses: ["Boss@Partner.ORG", "Jane <jane@Ｅxample.org>"] }
`,
    );
    const problems: ConfigProblem[] = [];
    const set = await loadPolicies(dir, problems);
    assert.deepEqual(problems, []);
    const recipients = set.lanes.x!.tools.recipients!;
    assert.deepEqual(recipients.allow_domains, ['xn--bcher-kva.example', '*.example.com']);
    assert.deepEqual(recipients.allow_addresses, ['boss@partner.org', 'jane@example.org']);

    await writeFile(path.join(dir, 'lanes.yaml'), `default_lane: x\nlanes:\n  x:\n    rank: 1\n    tools:\n      recipients: { allow_domains: ["[127.0.0.1]"], allow_addresses: ["a@b.com, c@d.com"] }\n`);
    const bad: ConfigProblem[] = [];
    await loadPolicies(dir, bad);
    assert.deepEqual(
      bad.filter((p) => p.path.includes('recipients')).map((p) => p.path),
      ['lanes.x.tools.recipients.allow_domains[0]', 'lanes.x.tools.recipients.allow_addresses[0]'],
    );
  });
});
