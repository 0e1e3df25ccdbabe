// /mcp end to end: the official MCP SDK client drives the real gateway with a
// gateway key; behind it, one MCP server over Streamable HTTP (on a free
// port, with scripted faults) and one over stdio the gateway spawns itself.
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { APP_KEY, OTHER_KEY, startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { startFakeMcpHttpServer, type FakeMcpHttpServer } from '../helpers/mcp-http-server.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const STDIO_SERVER = path.join(ROOT, 'test/helpers/mcp-stdio-server.ts');
const WEB_TOKEN = 'mcp-upstream-token-SECRET-77';

const POLICIES = `
default_lane: green
lanes:
  green:
    rank: 0
    tools: { deny: [web__send_email] }
  amber:
    rank: 10
    tools: { allow: [web__echo, local__whoami, local__die] }
  red:
    rank: 20
    tools: { allow: [] }
`;

function mcpServers(webUrl: string): string {
  return `
policies: { dir: ./policies }
mcp_servers:
  web:
    url: ${webUrl}
    headers: { Authorization: "Bearer \${WEB_TOKEN}" }
    timeout_ms: 1500
    max_result_bytes: 100000
  local:
    command: ${JSON.stringify(process.execPath)}
    args: ["--import", "tsx", ${JSON.stringify(STDIO_SERVER)}]
    cwd: ${JSON.stringify(ROOT)}
    timeout_ms: 3000
    connect_timeout_ms: 20000
    restart_min_ms: 50
`;
}

async function connect(gw: TestGateway, key: string, headers: Record<string, string> = {}): Promise<Client> {
  const client = new Client({ name: 'test-agent', version: '1.0.0' });
  const transport = new StreamableHTTPClientTransport(new URL(`${gw.url}/mcp`), { requestInit: { headers: { authorization: `Bearer ${key}`, ...headers } } });
  await client.connect(transport);
  return client;
}

function textOf(r: CallToolResult): string {
  return r.content.map((c) => (c.type === 'text' ? c.text : '')).join('');
}

async function waitFor<T>(fn: () => Promise<T | undefined>, what: string): Promise<T> {
  for (let i = 0; i < 200; i++) {
    const v = await fn().catch(() => undefined);
    if (v !== undefined) return v;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`gave up waiting for ${what}`);
}

describe('/mcp gateway', () => {
  let web: FakeMcpHttpServer;
  let gw: TestGateway;
  let green: Client;
  let amber: Client;

  before(async () => {
    web = await startFakeMcpHttpServer();
    gw = await startTestGateway({ extra: mcpServers(web.url), files: { 'policies/lanes.yaml': POLICIES }, betaLane: 'amber', env: { WEB_TOKEN } });
    green = await connect(gw, APP_KEY);
    amber = await connect(gw, OTHER_KEY);
    // The stdio server starts with the gateway; wait until its tools are listed.
    await waitFor(async () => ((await green.listTools()).tools.some((t) => t.name === 'local__whoami') ? true : undefined), 'the stdio server');
  });
  after(async () => {
    await green?.close();
    await amber?.close();
    await gw?.close();
    await web?.close();
  });

  it('a bad key – the API error shape with 401, before any MCP', async () => {
    const res = await fetch(`${gw.url}/mcp`, {
      method: 'POST',
      headers: { authorization: 'Bearer sk-wrong', 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
    });
    assert.equal(res.status, 401);
    const body = (await res.json()) as { error: { code: string; type: string } };
    assert.equal(body.error.code, 'invalid_api_key');
    assert.equal(body.error.type, 'authentication_error');
    assert.ok(res.headers.get('x-request-id'));
  });

  it('GET /mcp – 405: the gateway is stateless, without a server-to-client stream', async () => {
    const res = await fetch(`${gw.url}/mcp`, { headers: { authorization: `Bearer ${APP_KEY}`, accept: 'text/event-stream' } });
    assert.equal(res.status, 405);
    assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'method_not_allowed');
  });

  it('tools/list – namespaced by server and filtered by the lane', async () => {
    const greenNames = (await green.listTools()).tools.map((t) => t.name).sort();
    assert.ok(greenNames.includes('web__echo'));
    assert.ok(greenNames.includes('local__send-email'), 'the deny names web__send_email only');
    assert.ok(!greenNames.includes('web__send-email'), 'the green lane denies web__send_email');
    const amberNames = (await amber.listTools()).tools.map((t) => t.name).sort();
    assert.deepEqual(amberNames, ['lanegate__approval', 'local__die', 'local__whoami', 'web__echo']);
    const echo = (await amber.listTools()).tools.find((t) => t.name === 'web__echo')!;
    assert.equal(echo.description, 'Echoes its text.');
    assert.ok(echo.inputSchema.properties && 'text' in echo.inputSchema.properties);
  });

  it('x-gateway-lane – only stricter: red sees no upstream tools; a looser lane is a 403', async () => {
    const red = await connect(gw, APP_KEY, { 'x-gateway-lane': 'red' });
    assert.deepEqual(
      (await red.listTools()).tools.map((t) => t.name),
      ['lanegate__approval'],
    );
    await red.close();
    const res = await fetch(`${gw.url}/mcp`, {
      method: 'POST',
      headers: { authorization: `Bearer ${OTHER_KEY}`, 'x-gateway-lane': 'green', 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
    });
    assert.equal(res.status, 403);
    assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'lane_violation');
  });

  it('tools/call – runs an allowed tool on its upstream with the gateway credentials, never the agent key', async () => {
    const before = web.calls.length;
    const r = (await green.callTool({ name: 'web__echo', arguments: { text: 'hello' } })) as CallToolResult;
    assert.equal(r.isError, undefined);
    assert.equal(textOf(r), 'hello');
    assert.deepEqual(web.calls.slice(before), [{ tool: 'echo', args: { text: 'hello' } }]);
    assert.ok(web.authorizations.length > 0);
    for (const a of web.authorizations) assert.equal(a, `Bearer ${WEB_TOKEN}`);
    assert.ok(!web.authorizations.some((a) => a?.includes(APP_KEY)));
  });

  it('a denied tool – refused under any case or separator variant of its name, never executed', async () => {
    const before = web.calls.length;
    for (const name of ['web__send-email', 'web__send_email', 'WEB__Send-Email', 'web__send.email', 'ｗｅｂ__send_email', 'web__send\u200b_email']) {
      const r = (await green.callTool({ name, arguments: { to: 'a@example.com' } })) as CallToolResult;
      assert.equal(r.isError, true, name);
      assert.match(textOf(r), /rule: denied/, name);
      assert.match(textOf(r), /lane green/, name);
    }
    assert.equal(web.calls.length, before, 'the upstream never saw the call');
    const r = (await amber.callTool({ name: 'local__send-email', arguments: { to: 'a@example.com' } })) as CallToolResult;
    assert.equal(r.isError, true);
    assert.match(textOf(r), /rule: denied/);
  });

  it('tools/call over raw JSON-RPC – answered as the SDK answers it: one call, a batch, bad params and a refused Accept', async () => {
    const post = (body: unknown, accept = 'application/json, text/event-stream') =>
      fetch(`${gw.url}/mcp`, {
        method: 'POST',
        headers: { authorization: `Bearer ${APP_KEY}`, 'content-type': 'application/json', accept, 'mcp-protocol-version': '2025-06-18' },
        body: JSON.stringify(body),
      });
    const call = (id: number, params: unknown) => ({ jsonrpc: '2.0', id, method: 'tools/call', params });
    const one = await post(call(11, { name: 'web__echo', arguments: { text: 'raw' } }));
    assert.equal(one.status, 200);
    assert.match(one.headers.get('content-type') ?? '', /^application\/json/);
    assert.ok(one.headers.get('x-request-id'));
    assert.deepEqual(await one.json(), { jsonrpc: '2.0', id: 11, result: { content: [{ type: 'text', text: 'raw' }] } });
    const batch = await post([call(12, { name: 'web__echo', arguments: { text: 'b1' } }), call(13, { name: 'web__echo', arguments: { text: 'b2' } })]);
    const answers = (await batch.json()) as Array<{ id: number; result: CallToolResult }>;
    assert.deepEqual(answers.map((a) => [a.id, textOf(a.result)]).sort(), [[12, 'b1'], [13, 'b2']]);
    const bad = (await (await post(call(14, { arguments: {} }))).json()) as { id: number; error: { code: number; message: string } };
    assert.equal(bad.id, 14);
    assert.equal(bad.error.code, -32602);
    assert.match(bad.error.message, /^Invalid tools\/call request/);
    const refused = await post(call(15, { name: 'web__echo', arguments: { text: 'x' } }), 'application/json');
    assert.equal(refused.status, 406);
    assert.equal(web.calls.filter((c) => c.tool === 'echo' && c.args.text === 'x').length, 0);
  });

  it('an unknown tool – a tool error, not a hang', async () => {
    const r = (await green.callTool({ name: 'nowhere__thing', arguments: {} })) as CallToolResult;
    assert.equal(r.isError, true);
    assert.match(textOf(r), /not served here/);
  });

  it('resources and prompts – listed under the server, read through the gateway; not in a lane with none of its tools', async () => {
    const resources = (await green.listResources()).resources.map((r) => r.uri).sort();
    assert.deepEqual(resources, ['lanegate:local/file:///readme.md', 'lanegate:web/file:///readme.md']);
    const read = await green.readResource({ uri: 'lanegate:web/file:///readme.md' });
    assert.equal((read.contents[0] as { text: string }).text, '# Test server readme');
    const prompts = (await green.listPrompts()).prompts.map((p) => p.name).sort();
    assert.deepEqual(prompts, ['local__greet', 'web__greet']);
    const prompt = await green.getPrompt({ name: 'web__greet', arguments: { name: 'Ada' } });
    assert.deepEqual(prompt.messages[0]!.content, { type: 'text', text: 'Say hello to Ada.' });

    const red = await connect(gw, APP_KEY, { 'x-gateway-lane': 'red' });
    assert.deepEqual((await red.listResources()).resources, []);
    assert.deepEqual((await red.listPrompts()).prompts, []);
    await assert.rejects(red.readResource({ uri: 'lanegate:web/file:///readme.md' }), /not readable in lane red/);
    await assert.rejects(red.getPrompt({ name: 'web__greet', arguments: { name: 'Ada' } }), /not readable in lane red/);
    await red.close();
  });

  it('a slow upstream – a timeout tool error bounded by the server timeout_ms', async () => {
    const r = (await green.callTool({ name: 'web__slow', arguments: { ms: 10_000 } })) as CallToolResult;
    assert.equal(r.isError, true);
    assert.match(textOf(r), /did not answer tools\/call within 1500 ms/);
  });

  it('a huge result – refused like a bad provider answer', async () => {
    const r = (await green.callTool({ name: 'web__huge', arguments: { bytes: 500_000 } })) as CallToolResult;
    assert.equal(r.isError, true);
    assert.match(textOf(r), /MCP server "web"/);
    assert.ok(!textOf(r).includes('xxxx'));
    // The connection recovers for the next call.
    assert.equal(textOf((await green.callTool({ name: 'web__echo', arguments: { text: 'again' } })) as CallToolResult), 'again');
  });

  it('an invalid result – refused as an invalid answer, not passed on', async () => {
    const r = (await green.callTool({ name: 'web__bogus', arguments: {} })) as CallToolResult;
    assert.equal(r.isError, true);
    assert.match(textOf(r), /MCP server "web" gave an invalid answer to tools\/call/);
    assert.doesNotMatch(textOf(r), /not a list/);
  });

  it('the upstream killed mid-call – a prompt tool error; the next call reconnects', async () => {
    const r = (await green.callTool({ name: 'web__die', arguments: {} })) as CallToolResult;
    assert.equal(r.isError, true);
    assert.match(textOf(r), /MCP server "web"/);
    assert.doesNotMatch(textOf(r), /within 1500 ms/, 'failed when the connection broke, not at the timeout');
    assert.equal(textOf((await green.callTool({ name: 'web__echo', arguments: { text: 'back' } })) as CallToolResult), 'back');
  });

  it('an upstream that is down – a prompt tool error, and its tools leave tools/list', async () => {
    const down = await startFakeMcpHttpServer();
    await down.close();
    const gw2 = await startTestGateway({
      extra: `mcp_servers:\n  gone: { url: ${down.url}, timeout_ms: 1000, connect_timeout_ms: 1000 }\n`,
    });
    try {
      const client = await connect(gw2, APP_KEY);
      assert.deepEqual(
        (await client.listTools()).tools.map((t) => t.name),
        ['lanegate__approval'],
      );
      const r = (await client.callTool({ name: 'gone__echo', arguments: { text: 'x' } })) as CallToolResult;
      assert.equal(r.isError, true);
      await client.close();
    } finally {
      await gw2.close();
    }
  });

  it('a stdio server that dies – the call fails at once and the gateway restarts it', async () => {
    const first = textOf((await amber.callTool({ name: 'local__whoami', arguments: {} })) as CallToolResult);
    assert.match(first, /^\d+$/);
    const died = (await amber.callTool({ name: 'local__die', arguments: {} })) as CallToolResult;
    assert.equal(died.isError, true);
    assert.match(textOf(died), /MCP server "local"/);
    const second = await waitFor(async () => {
      const r = (await amber.callTool({ name: 'local__whoami', arguments: {} })) as CallToolResult;
      return r.isError ? undefined : textOf(r);
    }, 'the restarted stdio server');
    assert.notEqual(second, first, 'a new process answers');
    const metrics = await (await fetch(`${gw.url}/metrics`)).text();
    assert.match(metrics, /lanegate_mcp_server_restarts_total\{server="local"\} [1-9]/);
  });

  it('metrics – tool calls by server, tool, lane and outcome; upstream latency', async () => {
    const metrics = await (await fetch(`${gw.url}/metrics`)).text();
    assert.match(metrics, /lanegate_mcp_tool_calls_total\{server="web",tool="echo",lane="green",outcome="ok"\} [1-9]/);
    assert.match(metrics, /lanegate_mcp_tool_calls_total\{server="web",tool="send-email",lane="green",outcome="refused"\} 6/);
    assert.match(metrics, /lanegate_mcp_tool_calls_total\{server="web",tool="slow",lane="green",outcome="timeout"\} 1/);
    assert.match(metrics, /lanegate_mcp_upstream_duration_seconds_count\{server="web",operation="tools\/call",outcome="ok"\} [1-9]/);
  });

  it('logs – hold neither the agent key nor the upstream token', () => {
    const logs = gw.logs();
    assert.ok(!logs.includes(APP_KEY));
    assert.ok(!logs.includes(WEB_TOKEN));
  });
});
