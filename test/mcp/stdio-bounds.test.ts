// A local (stdio) MCP server that misbehaves: its answer to a call is a line
// that never ends. The gateway must cut it off at the server's
// max_result_bytes while it streams in (not hold it until the call times
// out), fail the call like a bad provider answer, and restart the server.
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { APP_KEY, startTestGateway, type TestGateway } from '../helpers/gateway.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const FLOOD_SERVER = path.join(ROOT, 'test/helpers/mcp-stdio-flood.ts');

const POLICIES = `
default_lane: green
lanes:
  green:
    rank: 0
    tools: { deny: [flood__nothing] }
`;

const CONFIG = `
policies: { dir: ./policies }
mcp_servers:
  flood:
    command: ${JSON.stringify(process.execPath)}
    args: ["--import", "tsx", ${JSON.stringify(FLOOD_SERVER)}]
    cwd: ${JSON.stringify(ROOT)}
    max_result_bytes: 100000
    # Far longer than the cut-off takes: a call that ends by timing out means nothing cut it off.
    timeout_ms: 60000
    connect_timeout_ms: 20000
    restart_min_ms: 50
`;

const textOf = (r: CallToolResult) => r.content.map((c) => (c.type === 'text' ? c.text : '')).join('');

describe('/mcp with a stdio server that never ends its line', () => {
  let gw: TestGateway;
  let agent: Client;
  const whoami = async () => textOf((await agent.callTool({ name: 'flood__whoami', arguments: {} })) as CallToolResult);

  before(async () => {
    gw = await startTestGateway({ extra: CONFIG, files: { 'policies/lanes.yaml': POLICIES } });
    agent = new Client({ name: 'bounds-agent', version: '1.0.0' });
    await agent.connect(new StreamableHTTPClientTransport(new URL(`${gw.url}/mcp`), { requestInit: { headers: { authorization: `Bearer ${APP_KEY}` } } }));
    for (let i = 0; i < 400 && !(await agent.listTools()).tools.some((t) => t.name === 'flood__whoami'); i++) await new Promise((r) => setTimeout(r, 50));
  });
  after(async () => {
    await agent.close();
    await gw.close();
  });

  it('stdio – an answer line past max_result_bytes is cut off as it streams, refused like a bad answer, and the server restarted', async () => {
    const before = await whoami();
    assert.match(before, /^\d+$/);
    const r = (await agent.callTool({ name: 'flood__flood', arguments: {} }, undefined, { timeout: 120_000 })) as CallToolResult;
    assert.equal(r.isError, true);
    assert.match(textOf(r), /MCP server "flood" failed during tools\/call: its answer exceeded 100000 bytes/);
    let after = before;
    for (let i = 0; i < 400 && (after === before || !/^\d+$/.test(after)); i++) {
      await new Promise((res) => setTimeout(res, 50));
      after = await whoami().catch(() => before);
    }
    assert.notEqual(after, before, 'a new process answers after the cut-off');
    const metrics = await (await fetch(`${gw.url}/metrics`)).text();
    assert.match(metrics, /lanegate_mcp_server_restarts_total\{server="flood"\} [1-9]/);
  });
});
