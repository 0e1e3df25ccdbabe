// `npm run bench:mcp`: MCP tools/call against a fast Streamable HTTP MCP
// server, direct and through the gateway's /mcp, side by side in one run, at
// a constant rate (open loop: latency from each call's scheduled time).
// Everything runs in this one process (server, gateway, load), so the figures
// compare the two paths rather than measure either alone; the gateway's
// added latency is the difference of the two.
//
//   BENCH_MCP_RATE=200 BENCH_MCP_DURATION_S=10 npm run bench:mcp
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { CallToolRequestSchema, ListToolsRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import { Pool } from 'undici';
import { hashKey } from '../src/auth/keys.js';
import { startGateway } from '../src/gateway.js';
import { summarise, type LatencySummary } from './percentiles.js';

const RATE = Number(process.env.BENCH_MCP_RATE ?? 200);
const DURATION_S = Number(process.env.BENCH_MCP_DURATION_S ?? 10);
const WARMUP_S = 2;
const KEY = 'sk-bench-mcp-0123456789';

async function startMcpServer(): Promise<{ url: string; close(): void }> {
  const http = createServer((req, res) => {
    const server = new Server({ name: 'bench', version: '1.0.0' }, { capabilities: { tools: {} } });
    server.setRequestHandler(ListToolsRequestSchema, () => ({ tools: [{ name: 'echo', inputSchema: { type: 'object', properties: { n: { type: 'number' } } } }] }));
    server.setRequestHandler(CallToolRequestSchema, (r) => ({ content: [{ type: 'text', text: `echo ${JSON.stringify(r.params.arguments)}` }] }));
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
    res.on('close', () => void server.close());
    void server.connect(transport).then(() => transport.handleRequest(req, res));
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(http.address() as AddressInfo).port}/mcp`, close: () => http.close() };
}

async function load(target: string, tool: string, headers: Record<string, string>): Promise<LatencySummary & { errors: number; callsPerS: number }> {
  const url = new URL(target);
  const pool = new Pool(url.origin, { connections: 64 });
  const warmup = RATE * WARMUP_S;
  const total = warmup + RATE * DURATION_S;
  const samples = new Float64Array(total - warmup);
  let errors = 0;
  const start = performance.now() + 50;
  const calls: Array<Promise<void>> = [];
  for (let i = 0; i < total; i++) {
    const scheduled = start + (i * 1000) / RATE;
    const wait = scheduled - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    const body = JSON.stringify({ jsonrpc: '2.0', id: i, method: 'tools/call', params: { name: tool, arguments: { n: i } } });
    calls.push(
      pool
        .request({ path: url.pathname, method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-06-18', ...headers }, body })
        .then(async (res) => {
          const text = await res.body.text();
          if (res.statusCode !== 200 || text.includes('"isError":true') || text.includes('"error"')) errors++;
          if (i >= warmup) samples[i - warmup] = performance.now() - scheduled;
        }),
    );
  }
  await Promise.all(calls);
  const elapsedS = (performance.now() - start) / 1000;
  await pool.close();
  return { ...summarise(samples), errors, callsPerS: Math.round(total / elapsedS) };
}

async function main(): Promise<void> {
  const upstream = await startMcpServer();
  const dir = mkdtempSync(join(tmpdir(), 'lanegate-bench-mcp-'));
  const configFile = join(dir, 'gateway.yaml');
  writeFileSync(
    configFile,
    `server: { port: 0, host: 127.0.0.1 }
logging: { level: warn, access_log: false }
keys: [{ id: bench, sha256: ${hashKey(KEY)}, app: bench, team: bench }]
providers: { mock: { type: mock } }
models: { fast: { deployments: [{ provider: mock, model: mock-fast }] } }
audit: { sink: off }
mcp_servers: { fast: { url: ${upstream.url}, timeout_ms: 5000 } }
`,
  );
  const gateway = await startGateway({ configFile, env: {}, port: 0, watch: false, logDestination: new Writable({ write: (_chunk, _encoding, done) => done() }) });
  try {
    const direct = await load(upstream.url, 'echo', {});
    const through = await load(`${gateway.url}/mcp`, 'fast__echo', { authorization: `Bearer ${KEY}` });
    const row = (name: string, r: typeof direct) =>
      `${name.padEnd(16)} ${String(r.callsPerS).padStart(8)} ${r.p50Ms.toFixed(2).padStart(9)} ${r.p99Ms.toFixed(2).padStart(9)} ${String(r.errors).padStart(7)}`;
    console.log(`MCP tools/call at ${RATE}/s for ${DURATION_S} s (one process)`);
    console.log(`${'path'.padEnd(16)} ${'calls/s'.padStart(8)} ${'p50 ms'.padStart(9)} ${'p99 ms'.padStart(9)} ${'errors'.padStart(7)}`);
    console.log(row('direct', direct));
    console.log(row('through gateway', through));
    console.log(`gateway adds ${(through.p50Ms - direct.p50Ms).toFixed(2)} ms at p50, ${(through.p99Ms - direct.p99Ms).toFixed(2)} ms at p99`);
  } finally {
    await gateway.shutdown();
    upstream.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
