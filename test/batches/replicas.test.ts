// The work queue across processes: two gateways on one Redis, one killed
// (SIGKILL) mid-batch, the other finishing its lines (XAUTOCLAIM after the
// claim timeout) with every line answered once; and the single-instance
// gateway killed and stopped mid-batch, resuming from its journal each time.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import OpenAI from 'openai';
import { startFakeOpenAI, type FakeOpenAI, type RecordedCall } from '../helpers/fake-openai.js';
import { APP_KEY, defaultTestConfig, startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { spawnGateway, type GatewayProcess } from '../helpers/gateway-process.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';
import { chatLines, outputLines, uploadBatchInput, waitForBatch } from '../helpers/batches.js';

const CONCURRENCY = 4;

/** Upstream calls per prompt ("<tag>line <i>"). */
function callsPerLine(calls: RecordedCall[], tag: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const c of calls) {
    const content = (c.body as { messages?: Array<{ content: string }> }).messages?.[0]?.content ?? '';
    if (content.startsWith(tag)) out.set(content, (out.get(content) ?? 0) + 1);
  }
  return out;
}

async function waitForCompleted(client: OpenAI, id: string, atLeast: number): Promise<void> {
  while ((await client.batches.retrieve(id)).request_counts!.completed < atLeast) await new Promise((r) => setTimeout(r, 25));
}

describe('batches across processes', () => {
  let upstream: FakeOpenAI;
  let redis: TestRedis;
  let shared: string;
  before(async () => {
    upstream = await startFakeOpenAI();
    redis = await startRedis();
    shared = await mkdtemp(path.join(tmpdir(), 'lanegate-batch-files-'));
  });
  after(async () => {
    await upstream.close();
    await redis.stop();
    await rm(shared, { recursive: true, force: true });
  });

  it('redis – a replica killed mid-batch: the other finishes its lines, each answered once, none run twice but those in flight', async () => {
    const extra = `
redis: { url: "${redis.url}", key_prefix: batch-replicas }
queue: { concurrency: ${CONCURRENCY}, claim_idle_ms: 1000, poll_ms: 20 }
files: { dir: "${shared}/files" }
`;
    upstream.always({ delayMs: 120 });
    const a: TestGateway = await startTestGateway({ openaiUrl: upstream.url, extra });
    const dir = await mkdtemp(path.join(tmpdir(), 'lanegate-replica-'));
    const configFile = path.join(dir, 'gateway.yaml');
    await writeFile(configFile, (defaultTestConfig({ openaiUrl: upstream.url }) + extra).replaceAll('{{dir}}', dir));
    const b: GatewayProcess = await spawnGateway(configFile);
    try {
      const client = a.client();
      const viaB = new OpenAI({ apiKey: APP_KEY, baseURL: b.baseURL, maxRetries: 0 });
      const calls = upstream.calls.length;
      const file = await uploadBatchInput(client, chatLines(50, 'gpt-fake', 'replicas '));
      // Created through B, read through A: the batch lives in Redis, not in either process.
      const created = await viaB.batches.create({ input_file_id: file.id, endpoint: '/v1/chat/completions', completion_window: '24h' });
      await waitForCompleted(client, created.id, 10);
      await b.kill();
      const batch = await waitForBatch(client, created.id, 60_000);
      assert.equal(batch.status, 'completed');
      assert.deepEqual(batch.request_counts, { total: 50, completed: 50, failed: 0 });
      const lines = await outputLines(client, batch.output_file_id!);
      assert.equal(lines.length, 50);
      assert.equal(new Set(lines.map((l) => l.custom_id)).size, 50, 'each custom_id once');
      const perLine = callsPerLine(upstream.calls.slice(calls), 'replicas ');
      assert.equal(perLine.size, 50);
      const twice = [...perLine.values()].filter((n) => n > 1);
      // Only a line the killed replica had in flight (sent, unanswered) may have gone upstream again.
      assert.ok(twice.every((n) => n === 2) && twice.length <= CONCURRENCY, `lines sent twice: ${twice.length}`);
      assert.match(b.logs(), /lanegate listening/);
    } finally {
      upstream.always(undefined);
      await b.kill();
      await a.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('single instance – killed, then stopped, mid-batch: each start resumes from the journal; each line answered once', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'lanegate-single-'));
    const configFile = path.join(dir, 'gateway.yaml');
    const extra = `
queue: { concurrency: ${CONCURRENCY}, poll_ms: 20 }
`;
    await writeFile(configFile, (defaultTestConfig({ openaiUrl: upstream.url }) + extra).replaceAll('{{dir}}', dir));
    upstream.always({ delayMs: 100 });
    let gw = await spawnGateway(configFile);
    try {
      const client = () => new OpenAI({ apiKey: APP_KEY, baseURL: gw.baseURL, maxRetries: 0 });
      const calls = upstream.calls.length;
      const file = await uploadBatchInput(client(), chatLines(40, 'gpt-fake', 'restart '));
      const created = await client().batches.create({ input_file_id: file.id, endpoint: '/v1/chat/completions', completion_window: '24h' });
      await waitForCompleted(client(), created.id, 5);
      await gw.kill();
      gw = await spawnGateway(configFile);
      await waitForCompleted(client(), created.id, 15);
      await gw.stop();
      gw = await spawnGateway(configFile);
      const batch = await waitForBatch(client(), created.id, 60_000);
      assert.equal(batch.status, 'completed');
      assert.deepEqual(batch.request_counts, { total: 40, completed: 40, failed: 0 });
      const lines = await outputLines(client(), batch.output_file_id!);
      assert.equal(new Set(lines.map((l) => l.custom_id)).size, 40);
      assert.equal(lines.length, 40);
      const perLine = callsPerLine(upstream.calls.slice(calls), 'restart ');
      const twice = [...perLine.values()].filter((n) => n > 1);
      // Only lines in flight when the process was killed may have gone upstream again; a graceful stop lets them finish.
      assert.ok(twice.length <= CONCURRENCY, `lines sent twice: ${twice.length}`);
    } finally {
      upstream.always(undefined);
      await gw.kill();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
