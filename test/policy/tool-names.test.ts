// Tool names compare in one canonical form (case, width, invisible characters,
// "-", "_", "." and spaces set aside), `allow: ["*"]` means every catalogued
// tool, and a call to a tool the request did not offer never reaches the app.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import type OpenAI from 'openai';
import { startFakeOpenAI, type FakeOpenAI } from '../helpers/fake-openai.js';
import { ADMIN_KEY, APP_KEY, defaultTestConfig, startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { WITH_POLICIES } from './fixtures.js';

const run = promisify(execFile);
const root = path.resolve(import.meta.dirname, '../..');

const POLICIES = `
default_lane: green
tools:
  search_docs: {}
  get_weather: {}
  send_email: {}
  run_shell: {}
lanes:
  green:
    rank: 10
    tools:
      allow: ["*"]
      deny: [run_shell]
      on_denied: reject
      require_approval: [send_email]
  amber:
    rank: 20
    tools:
      allow: ["*"]
      deny: [run_shell]
      on_denied: strip
      require_approval: [send_email]
`;

/** `run_shell` as a model or an app might spell it. */
const SHELL_SPELLINGS = ['Run_Shell', 'RUN_SHELL', 'run-shell', 'run.shell', 'ｒｕｎ＿ｓｈｅｌｌ', 'run\u200b_shell'];
/** The ones the chat API accepts in `tools` (names there are ASCII letters, digits, "_" and "-"). */
const OFFERABLE_SHELL_SPELLINGS = ['Run_Shell', 'RUN_SHELL', 'run-shell'];

interface ErrorBody {
  error: { message: string; code: string; param: string | null };
}
interface Blocked {
  tool: string;
  rule: string;
  reason: string;
}
interface GatewayReport {
  blocked_tool_calls?: Blocked[];
  approvals?: Array<{ id: string; tool: string; status: string }>;
}

const tool = (name: string) => ({ type: 'function' as const, function: { name, parameters: { type: 'object' } } });
const callName = (call: OpenAI.ChatCompletionMessageToolCall) => (call.type === 'function' ? call.function.name : call.custom.name);
const user = (content: string) => [{ role: 'user' as const, content }];

/** A whole streamed reply as the app sees it: text, tool calls, what the gateway reported, the finish reason. */
async function readStream(stream: AsyncIterable<OpenAI.ChatCompletionChunk>) {
  const calls: string[] = [];
  const reports: GatewayReport[] = [];
  let finish: string | null = null;
  for await (const chunk of stream) {
    const report = (chunk as unknown as { gateway?: GatewayReport }).gateway;
    if (report) reports.push(report);
    for (const c of chunk.choices) {
      for (const call of c.delta?.tool_calls ?? []) if (call.function?.name) calls.push(call.function.name);
      if (c.finish_reason) finish = c.finish_reason;
    }
  }
  return { calls, blocked: reports.flatMap((r) => r.blocked_tool_calls ?? []), approvals: reports.flatMap((r) => r.approvals ?? []), finish };
}

describe('tool names and the tool-call guard', () => {
  let upstream: FakeOpenAI;
  let gw: TestGateway;
  before(async () => {
    upstream = await startFakeOpenAI();
    gw = await startTestGateway({ openaiUrl: upstream.url, extra: WITH_POLICIES, files: { 'policies/lanes.yaml': POLICIES } });
  });
  after(async () => {
    await gw.close();
    await upstream.close();
  });

  const chat = (body: object, headers: Record<string, string> = {}) =>
    fetch(`${gw.baseURL}/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${APP_KEY}`, 'content-type': 'application/json', ...headers },
      body: JSON.stringify(body),
    });
  const recordOf = async (id: string | null) => {
    const record = (await gw.auditRecords()).find((r) => r.id === id);
    assert.ok(record, `an audit record for ${id}`);
    return record as { policy: { stripped_tools: string[]; blocked_tool_calls: Blocked[]; approvals: Array<{ tool: string }> } };
  };
  const toolMetric = async (labels: string) => {
    const text = await (await fetch(`${gw.url}/metrics`)).text();
    const line = text.split('\n').find((l) => l.startsWith(`lanegate_tool_calls_total{${labels}}`));
    return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : 0;
  };

  it('offered tools – a denied tool is refused however the request spells it, and stripped in a strip lane', async () => {
    const calls = upstream.calls.length;
    for (const name of OFFERABLE_SHELL_SPELLINGS) {
      const res = await chat({ model: 'gpt-fake', tools: [tool('search_docs'), tool(name)], messages: user('hi') });
      assert.equal(res.status, 403, name);
      const body = (await res.json()) as ErrorBody;
      assert.equal(body.error.code, 'lane_violation', name);
      assert.equal(body.error.message, `Lane "green" does not allow the tool "${name}". Remove it from tools.`);
    }
    // The others cannot even be offered: the API only takes ASCII tool names.
    for (const name of SHELL_SPELLINGS.filter((n) => !OFFERABLE_SHELL_SPELLINGS.includes(n))) {
      const res = await chat({ model: 'gpt-fake', tools: [tool(name)], messages: user('hi') });
      assert.equal(res.status, 400, JSON.stringify(name));
      assert.equal(((await res.json()) as ErrorBody).error.code, 'invalid_request');
    }
    assert.equal(upstream.calls.length, calls, 'no refused request went upstream');

    for (const name of OFFERABLE_SHELL_SPELLINGS) {
      const forced = { type: 'function', function: { name: name.toUpperCase() } };
      const res = await chat({ model: 'gpt-fake', tools: [tool(name), tool('search_docs')], tool_choice: forced, messages: user('hi') }, { 'x-gateway-lane': 'amber' });
      assert.equal(res.status, 200, name);
      await res.arrayBuffer();
      const sent = upstream.calls.at(-1)!.body as { tools: Array<{ function: { name: string } }>; tool_choice?: unknown };
      assert.deepEqual(sent.tools.map((t) => t.function.name), ['search_docs'], name);
      assert.equal(sent.tool_choice, undefined, 'a tool_choice naming the stripped tool, in any spelling, goes too');
      assert.deepEqual((await recordOf(res.headers.get('x-request-id'))).policy.stripped_tools, [name]);
    }
  });

  it('tool guard – a call to a denied tool under any spelling is blocked, streamed or not', async () => {
    const scripted = { toolCalls: [...SHELL_SPELLINGS.map((name) => ({ name, arguments: '{"cmd":"rm -rf /"}' })), { name: 'search_docs', arguments: '{"q":"x"}' }] };
    const expected = SHELL_SPELLINGS.map((name) => ({ tool: name, rule: 'denied', reason: `tool "${name}" is not allowed in lane green` }));

    upstream.script(scripted);
    const { data, response } = await gw.client().chat.completions.create({ model: 'gpt-fake', tools: [tool('search_docs')], messages: user('list files') }).withResponse();
    assert.deepEqual(data.choices[0]!.message.tool_calls?.map(callName), ['search_docs'], 'only the offered, allowed call reaches the app');
    assert.deepEqual((data as unknown as { gateway: GatewayReport }).gateway.blocked_tool_calls, expected);
    assert.equal(response.headers.get('x-gateway-tool-calls-blocked'), String(SHELL_SPELLINGS.length));
    assert.deepEqual((await recordOf(response.headers.get('x-request-id'))).policy.blocked_tool_calls, expected, 'the record keeps each name as the model wrote it');

    upstream.script(scripted);
    const stream = await gw.client().chat.completions.create({ model: 'gpt-fake', stream: true, tools: [tool('search_docs')], messages: user('list files') });
    const seen = await readStream(stream);
    assert.deepEqual(seen.calls, ['search_docs']);
    assert.deepEqual(seen.blocked, expected);
    assert.equal(seen.finish, 'tool_calls');
  });

  it('approvals – a call to a require_approval tool is held under any spelling, streamed or not', async () => {
    const spellings = ['Send_Email', 'SEND_EMAIL', 'send-email', 'send.email', 'ｓｅｎｄ＿ｅｍａｉｌ', 'send\u200b_email'];
    const scripted = { toolCalls: spellings.map((name) => ({ name, arguments: '{"to":"team@example.com"}' })) };

    upstream.script(scripted);
    const { data, response } = await gw.client().chat.completions.create({ model: 'gpt-fake', tools: [tool('send_email')], messages: user('mail the team') }).withResponse();
    assert.equal(data.choices[0]!.message.tool_calls, undefined, 'no call reaches the app');
    assert.equal(data.choices[0]!.finish_reason, 'stop');
    const held = (data as unknown as { gateway: GatewayReport }).gateway.approvals!;
    assert.deepEqual(held.map((a) => [a.tool, a.status]), spellings.map((name) => [name, 'pending']));
    assert.equal(response.headers.get('x-gateway-approvals'), held.map((a) => a.id).join(','));
    const pending = (await (await fetch(`${gw.url}/admin/approvals?status=pending`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } })).json()) as { data: Array<{ id: string; tool: string }> };
    for (const a of held) assert.equal(pending.data.find((p) => p.id === a.id)?.tool, a.tool, 'the approval names the tool as the model wrote it');

    upstream.script(scripted);
    const stream = await gw.client().chat.completions.create({ model: 'gpt-fake', stream: true, tools: [tool('send_email')], messages: user('mail the team') });
    const seen = await readStream(stream);
    assert.deepEqual(seen.calls, []);
    assert.deepEqual(seen.approvals.map((a) => a.tool), spellings);
    assert.equal(seen.finish, 'stop');
  });

  it('allow "*" – a tool the catalogue does not list is refused in a reject lane, stripped in a strip lane, and blocked when called', async () => {
    const calls = upstream.calls.length;
    const rejected = await chat({ model: 'gpt-fake', tools: [tool('search_docs'), tool('delete_everything')], messages: user('hi') });
    assert.equal(rejected.status, 403);
    const body = (await rejected.json()) as ErrorBody;
    assert.equal(body.error.code, 'lane_violation');
    assert.equal(body.error.message, 'Lane "green" does not allow the tool "delete_everything" ("delete_everything" is not in the tool catalogue). Remove it from tools.');
    assert.equal(upstream.calls.length, calls, 'upstream is not called');

    const stripped = await chat({ model: 'gpt-fake', tools: [tool('delete_everything'), tool('search_docs')], messages: user('hi') }, { 'x-gateway-lane': 'amber' });
    assert.equal(stripped.status, 200);
    await stripped.arrayBuffer();
    assert.deepEqual((upstream.calls.at(-1)!.body.tools as Array<{ function: { name: string } }>).map((t) => t.function.name), ['search_docs']);
    assert.deepEqual((await recordOf(stripped.headers.get('x-request-id'))).policy.stripped_tools, ['delete_everything']);

    upstream.script({ toolCalls: [{ name: 'delete_everything' }] });
    const called = await gw.client().chat.completions.create({ model: 'gpt-fake', tools: [tool('search_docs')], messages: user('hi') });
    assert.equal(called.choices[0]!.message.tool_calls, undefined);
    assert.deepEqual((called as unknown as { gateway: GatewayReport }).gateway.blocked_tool_calls, [
      { tool: 'delete_everything', rule: 'uncatalogued', reason: 'tool "delete_everything" is not in the tool catalogue, so lane green does not allow it' },
    ]);
  });

  it('tool guard – a call whose name only looks like an offered tool (trailing space, Cyrillic letter, doubled separator) is blocked', async () => {
    // Offered names are ASCII (the request schema), so these can only come from the model; homoglyphs are
    // not folded (a confusables skeleton would merge real names): the offered-tools check stops them.
    const lookalikes = ['search_docs ', 'sеarch_docs', 'search__docs', '_search_docs'];
    upstream.script({ toolCalls: lookalikes.map((name) => ({ name })) });
    const res = await gw.client().chat.completions.create({ model: 'gpt-fake', tools: [tool('search_docs')], messages: user('hi') });
    assert.equal(res.choices[0]!.message.tool_calls, undefined);
    assert.deepEqual((res as unknown as { gateway: GatewayReport }).gateway.blocked_tool_calls?.map((b) => [b.tool, b.rule]), lookalikes.map((name) => [name, 'uncatalogued']));
  });

  it('tool guard – a call to a tool the request did not offer never reaches the app, streamed or not, and is counted and audited', async () => {
    const before = await toolMetric('lane="green",outcome="blocked",reason="not_offered"');
    // get_weather is catalogued and allowed, but this request offered only search_docs (or nothing).
    const scripted = { toolCalls: [{ name: 'Get_Weather', arguments: '{"city":"Oslo"}' }, { name: 'search_docs', arguments: '{"q":"x"}' }] };
    const expected = [{ tool: 'Get_Weather', rule: 'not_offered', reason: 'tool "Get_Weather" was not offered by the request' }];

    upstream.script(scripted);
    const { data, response } = await gw.client().chat.completions.create({ model: 'gpt-fake', tools: [tool('search_docs')], messages: user('weather?') }).withResponse();
    assert.deepEqual(data.choices[0]!.message.tool_calls?.map(callName), ['search_docs']);
    assert.deepEqual((data as unknown as { gateway: GatewayReport }).gateway.blocked_tool_calls, expected);
    assert.equal(response.headers.get('x-gateway-tool-calls-blocked'), '1');
    assert.deepEqual((await recordOf(response.headers.get('x-request-id'))).policy.blocked_tool_calls, expected);

    upstream.script({ toolCalls: [{ name: 'get_weather' }] });
    const none = await gw.client().chat.completions.create({ model: 'gpt-fake', messages: user('weather?') });
    assert.equal(none.choices[0]!.message.tool_calls, undefined, 'a request that offered no tools gets no call');
    assert.equal(none.choices[0]!.finish_reason, 'stop');

    upstream.script(scripted);
    const { data: stream, response: streamed } = await gw.client().chat.completions.create({ model: 'gpt-fake', stream: true, tools: [tool('search_docs')], messages: user('weather?') }).withResponse();
    const seen = await readStream(stream);
    assert.deepEqual(seen.calls, ['search_docs']);
    assert.deepEqual(seen.blocked, expected);
    assert.deepEqual((await recordOf(streamed.headers.get('x-request-id'))).policy.blocked_tool_calls, expected);

    upstream.script({ toolCalls: [{ name: 'get_weather' }] });
    const noneStreamed = await readStream(await gw.client().chat.completions.create({ model: 'gpt-fake', stream: true, messages: user('weather?') }));
    assert.deepEqual(noneStreamed.calls, []);
    assert.equal(noneStreamed.finish, 'stop');

    assert.equal(await toolMetric('lane="green",outcome="blocked",reason="not_offered"'), before + 4);
  });

  it('tool guard – a permitted call’s arguments stream to the app as they arrive; denied and unoffered calls never reach it', async () => {
    const args = '{"q":"quarterly report draft"}';
    // search_docs is offered and allowed (no approval, no recipients rule): its name decides.
    const calls = [{ name: 'search_docs', arguments: args }, { name: 'Run_Shell', arguments: '{"cmd":"rm -rf /"}' }, { name: 'get_weather', arguments: '{"city":"Oslo"}' }];
    /** The argument pieces of each call the app is given, by name. */
    const read = async (stream: AsyncIterable<OpenAI.ChatCompletionChunk>, stopWhen: (pieces: string[]) => boolean) => {
      const names = new Map<number, string>();
      const pieces = new Map<string, string[]>();
      const report: GatewayReport[] = [];
      let finish: string | null = null;
      for await (const chunk of stream) {
        const gateway = (chunk as unknown as { gateway?: GatewayReport }).gateway;
        if (gateway) report.push(gateway);
        for (const c of chunk.choices) {
          for (const d of c.delta?.tool_calls ?? []) {
            if (d.function?.name) names.set(d.index, d.function.name);
            const name = names.get(d.index) ?? `#${d.index}`;
            if (!pieces.has(name)) pieces.set(name, []);
            if (d.function?.arguments) pieces.get(name)!.push(d.function.arguments);
          }
          if (c.finish_reason) finish = c.finish_reason;
        }
        if (stopWhen(pieces.get('search_docs') ?? [])) break;
      }
      return { pieces, blocked: report.flatMap((r) => r.blocked_tool_calls ?? []), finish };
    };

    // The upstream stalls right after search_docs' two argument pieces: they must reach the app before the stream ends.
    upstream.script({ toolCalls: calls, stallAfterChunks: 4 });
    const early = await read(await gw.client().chat.completions.create({ model: 'gpt-fake', stream: true, tools: [tool('search_docs')], messages: user('find it') }), (p) => p.join('') === args).catch((err: unknown) => ({ err }));
    assert.ok('pieces' in early, `the stream broke off before the arguments arrived: ${String((early as { err: unknown }).err)}`);
    assert.deepEqual(early.pieces.get('search_docs'), [args.slice(0, Math.floor(args.length / 2)), args.slice(Math.floor(args.length / 2))], 'each piece as it came');

    upstream.script({ toolCalls: calls });
    const whole = await read(await gw.client().chat.completions.create({ model: 'gpt-fake', stream: true, tools: [tool('search_docs')], messages: user('find it') }), () => false);
    assert.deepEqual([...whole.pieces.keys()], ['search_docs'], 'only the permitted call reached the app');
    assert.equal(whole.pieces.get('search_docs')!.length, 2);
    assert.equal(whole.pieces.get('search_docs')!.join(''), args);
    assert.deepEqual(whole.blocked.map((b) => [b.tool, b.rule]), [['Run_Shell', 'denied'], ['get_weather', 'not_offered']]);
    assert.equal(whole.finish, 'tool_calls');
  });

  it('explain – reads offered tools in their canonical form', async () => {
    const explain = async (request: object, headers: Record<string, string> = {}) => {
      const res = await fetch(`${gw.url}/admin/policy/explain`, {
        method: 'POST',
        headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json' },
        body: JSON.stringify({ key_id: 'alpha', request, headers }),
      });
      assert.equal(res.status, 200);
      return (await res.json()) as { decision: string; error?: { code: string }; stripped_tools: string[]; offered_tools: unknown[]; tool_rules: { allowed: string[] } };
    };
    const request = { model: 'gpt-fake', tools: [tool('Run-Shell'), tool('SEARCH_DOCS'), tool('delete_everything')], messages: user('hi') };
    const green = await explain(request);
    assert.equal(green.decision, 'refused');
    assert.equal(green.error?.code, 'lane_violation');
    assert.deepEqual(green.offered_tools, [
      { name: 'Run-Shell', canonical: 'run_shell', catalogued_as: 'run_shell', verdict: 'denied' },
      { name: 'SEARCH_DOCS', canonical: 'search_docs', catalogued_as: 'search_docs', verdict: 'allowed' },
      { name: 'delete_everything', canonical: 'delete_everything', catalogued_as: null, verdict: 'uncatalogued' },
    ]);
    assert.deepEqual(green.tool_rules.allowed, ['search_docs', 'get_weather', 'send_email'], '"*" is every catalogued tool not denied');
    const amber = await explain(request, { 'x-gateway-lane': 'amber' });
    assert.equal(amber.decision, 'allowed');
    assert.deepEqual(amber.stripped_tools, ['Run-Shell', 'delete_everything']);
  });
});

describe('tool guard without policies', () => {
  let upstream: FakeOpenAI;
  let gw: TestGateway;
  before(async () => {
    upstream = await startFakeOpenAI();
    gw = await startTestGateway({ openaiUrl: upstream.url });
  });
  after(async () => {
    await gw.close();
    await upstream.close();
  });

  it('tool guard – with no policies any tool may be offered, but a call to one not offered is still removed', async () => {
    upstream.script({ toolCalls: [{ name: 'anything_at_all' }, { name: 'not_offered' }] });
    const res = await gw.client().chat.completions.create({ model: 'gpt-fake', tools: [tool('anything_at_all')], messages: user('go') });
    assert.deepEqual(res.choices[0]!.message.tool_calls?.map(callName), ['anything_at_all']);
    assert.deepEqual((res as unknown as { gateway: GatewayReport }).gateway.blocked_tool_calls?.map((b) => [b.tool, b.rule]), [['not_offered', 'not_offered']]);

    upstream.script({ toolCalls: [{ name: 'not_offered' }] });
    const seen = await readStream(await gw.client().chat.completions.create({ model: 'gpt-fake', stream: true, tools: [tool('anything_at_all')], messages: user('go') }));
    assert.deepEqual(seen.calls, []);
    assert.deepEqual(seen.blocked.map((b) => b.tool), ['not_offered']);
  });
});

describe('tool catalogue (command line)', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'lanegate-tools-'));
    await mkdir(path.join(dir, 'policies'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  const checkConfig = async (files: Record<string, string>) => {
    await rm(path.join(dir, 'policies'), { recursive: true, force: true });
    await mkdir(path.join(dir, 'policies'));
    for (const [name, text] of Object.entries(files)) await writeFile(path.join(dir, 'policies', name), text);
    const configFile = path.join(dir, 'gateway.yaml');
    await writeFile(configFile, defaultTestConfig({}).replaceAll('{{dir}}', dir) + WITH_POLICIES);
    return run('node', ['bin/lanegate.mjs', 'check-config', '--config', configFile], { cwd: root });
  };
  const lane = 'default_lane: green\nlanes:\n  green: { rank: 10, tools: { deny: [Run-Shell] } }\n';

  it('check-config – two catalogued tools whose names fold together are an error naming both; lane lists match in any spelling', async () => {
    const ok = await checkConfig({ 'a.yaml': `tools: { run_shell: {}, search: {} }\n${lane}` });
    assert.match(ok.stdout, /OK/, 'deny: [Run-Shell] names the catalogued run_shell');

    await assert.rejects(checkConfig({ 'a.yaml': `tools: { run_shell: {}, Run-Shell: {} }\n${lane}` }), (err: { code: number; stderr: string }) => {
      assert.equal(err.code, 1);
      assert.match(err.stderr, /a\.yaml: tools\.Run-Shell: "Run-Shell" and "run_shell" \(.*a\.yaml\) are the same tool: tool names are compared ignoring case/);
      return true;
    });
    await assert.rejects(checkConfig({ 'a.yaml': `tools: { run_shell: {} }\n${lane}`, 'b.yaml': 'tools: { RUN_SHELL: {} }\n' }), (err: { code: number; stderr: string }) => {
      assert.equal(err.code, 1);
      assert.match(err.stderr, /b\.yaml: tools\.RUN_SHELL: "RUN_SHELL" and "run_shell" \(.*a\.yaml\) are the same tool/);
      return true;
    });
  });

  it('lanegate explain – the shipped green lane refuses run_shell in any spelling', async () => {
    const request = path.join(dir, 'request.json');
    await writeFile(request, JSON.stringify({ model: 'fast', tools: [tool('RUN-SHELL')], messages: user('hi') }));
    const { stdout } = await run('node', ['bin/lanegate.mjs', 'explain', '--key-id', 'dev', '--request', request], {
      cwd: root,
      env: { ...process.env, OPENAI_API_KEY: '', ANTHROPIC_API_KEY: '' },
    });
    const result = JSON.parse(stdout) as { decision: string; error: { code: string; message: string }; offered_tools: Array<{ canonical: string; verdict: string }> };
    assert.equal(result.decision, 'refused');
    assert.equal(result.error.code, 'lane_violation');
    assert.match(result.error.message, /does not allow the tool "RUN-SHELL"/);
    assert.deepEqual(result.offered_tools.map((t) => [t.canonical, t.verdict]), [['run_shell', 'denied']]);
  });
});
