// MCP tool calls in traces: one `execute_tool {tool}` span per call, with the
// OpenTelemetry GenAI attributes for tool execution, continuing the agent's
// traceparent, and failed when the upstream fails.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { waitFor } from '../audit/fixtures.js';
import { APP_KEY, startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { startFakeMcpHttpServer, type FakeMcpHttpServer } from '../helpers/mcp-http-server.js';

interface JsonSpan {
  traceId: string;
  parentSpanId?: string;
  name: string;
  attributes: Array<{ key: string; value: { stringValue?: string } }>;
  status?: { code?: number };
}

async function startReceiver(): Promise<{ url: string; spans: JsonSpan[]; server: Server }> {
  const spans: JsonSpan[] = [];
  const server = createServer(async (req, res) => {
    const parts: Buffer[] = [];
    for await (const chunk of req) parts.push(chunk as Buffer);
    const parsed = JSON.parse(Buffer.concat(parts).toString('utf8')) as { resourceSpans: Array<{ scopeSpans: Array<{ spans: JsonSpan[] }> }> };
    for (const rs of parsed.resourceSpans) for (const ss of rs.scopeSpans) spans.push(...ss.spans);
    res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, spans, server };
}

const attr = (s: JsonSpan, key: string) => s.attributes.find((a) => a.key === key)?.value.stringValue;

describe('/mcp traces', () => {
  let web: FakeMcpHttpServer;
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  let gw: TestGateway;
  const appTrace = '4bf92f3577b34da6a3ce929d0e0e4736';

  before(async () => {
    web = await startFakeMcpHttpServer();
    receiver = await startReceiver();
    gw = await startTestGateway({
      // The same server twice: \`web\` with room for an answer however loaded the machine, \`tight\` with a timeout its
      // \`slow\` tool (which never answers in time) runs into.
      extra: `telemetry: { otlp_endpoint: "${receiver.url}", protocol: http/json }\nmcp_servers:\n  web: { url: ${web.url}, timeout_ms: 60000 }\n  tight: { url: ${web.url}, timeout_ms: 1000 }\n`,
    });
  });
  after(async () => {
    await gw?.close();
    await web?.close();
    receiver?.server.close();
  });

  it('execute_tool – a span per call with gen_ai.tool.* attributes, in the agent trace; a timeout fails it', async () => {
    const client = new Client({ name: 'traced-agent', version: '1.0.0' });
    const headers = { authorization: `Bearer ${APP_KEY}`, traceparent: `00-${appTrace}-00f067aa0ba902b7-01` };
    await client.connect(new StreamableHTTPClientTransport(new URL(`${gw.url}/mcp`), { requestInit: { headers } }));
    const ok = (await client.callTool({ name: 'web__echo', arguments: { text: 'hi' } })) as CallToolResult;
    assert.equal(ok.isError, undefined);
    const slow = (await client.callTool({ name: 'tight__slow', arguments: { ms: 600_000 } })) as CallToolResult;
    assert.equal(slow.isError, true);
    await client.close();

    const echo = await waitFor('the echo span', () => receiver.spans.find((s) => s.name === 'execute_tool web__echo'), 10_000);
    assert.equal(echo.traceId, appTrace);
    assert.equal(attr(echo, 'gen_ai.operation.name'), 'execute_tool');
    assert.equal(attr(echo, 'gen_ai.tool.name'), 'web__echo');
    assert.ok(attr(echo, 'gen_ai.tool.call.id'));
    assert.equal(attr(echo, 'lanegate.mcp.server'), 'web');
    assert.notEqual(echo.status?.code, 2);
    const failed = await waitFor('the slow span', () => receiver.spans.find((s) => s.name === 'execute_tool tight__slow'), 10_000);
    assert.equal(failed.status?.code, 2);
    assert.equal(attr(failed, 'error.type'), 'upstream_timeout');
  });
});
