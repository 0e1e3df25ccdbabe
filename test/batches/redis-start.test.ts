// The work queue when Redis is not there at the right moment: a gateway
// started while Redis is down starts anyway and its queue runs batches once
// Redis comes up; a Redis restarted empty (no persistence, so the queue's
// consumer group is gone) is picked up again without a gateway restart.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startFakeOpenAI, type FakeOpenAI } from '../helpers/fake-openai.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';
import { chatLines, uploadBatchInput, waitForBatch } from '../helpers/batches.js';

async function until(what: string, ok: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error(`${what}: not after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe('work queue on Redis – Redis down at start, Redis restarted empty', () => {
  let upstream: FakeOpenAI;
  let redis: TestRedis;
  let dir: string;
  let gw: TestGateway;
  let gw2: TestGateway;
  const extra = () => `
redis: { url: "${redis.url}", key_prefix: redis-start }
queue: { poll_ms: 20 }
files: { dir: "${dir}/files" }
`;
  before(async () => {
    upstream = await startFakeOpenAI();
    redis = await startRedis();
    dir = await mkdtemp(path.join(tmpdir(), 'lanegate-redis-start-'));
  });
  after(async () => {
    await gw2?.close();
    await gw?.close();
    await upstream?.close();
    await redis?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('start – a gateway started while Redis is down serves, and runs batches once Redis is up', async () => {
    await redis.kill();
    gw = await startTestGateway({ openaiUrl: upstream.url, extra: extra() });
    assert.match(gw.logs(), /redis is not reachable at start/);
    // Requests that need no Redis are served meanwhile.
    const answer = await gw.client().chat.completions.create({ model: 'fast', messages: [{ role: 'user', content: 'hello while redis is down' }] });
    assert.ok(answer.choices[0]?.message.content);

    await redis.restart();
    const client = gw.client();
    await until('redis is ready again', async () => (await fetch(`${gw.url}/readyz`)).ok);
    const file = await uploadBatchInput(client, chatLines(3, 'gpt-fake', 'after-start '));
    const created = await client.batches.create({ input_file_id: file.id, endpoint: '/v1/chat/completions', completion_window: '24h' });
    const batch = await waitForBatch(client, created.id, 20_000);
    assert.equal(batch.status, 'completed');
    assert.deepEqual(batch.request_counts, { total: 3, completed: 3, failed: 0 });
  });

  it('restart – a Redis restarted empty loses the consumer group; the queue makes it again and goes on', async () => {
    await gw?.close();
    await redis.restart(); // up, whatever the test before left
    gw2 = await startTestGateway({ openaiUrl: upstream.url, extra: extra() });
    const client = gw2.client();
    const first = await client.batches.create({
      input_file_id: (await uploadBatchInput(client, chatLines(1, 'gpt-fake', 'before-restart '))).id,
      endpoint: '/v1/chat/completions',
      completion_window: '24h',
    });
    assert.equal((await waitForBatch(client, first.id, 20_000)).status, 'completed');
    await redis.restart();
    await until('redis is ready again', async () => (await fetch(`${gw2.url}/readyz`)).ok);
    const file = await uploadBatchInput(client, chatLines(2, 'gpt-fake', 'after-restart '));
    // The batch record itself went with the old data: it is made again here, on the empty server.
    const created = await client.batches.create({ input_file_id: file.id, endpoint: '/v1/chat/completions', completion_window: '24h' });
    const batch = await waitForBatch(client, created.id, 20_000);
    assert.equal(batch.status, 'completed');
    assert.deepEqual(batch.request_counts, { total: 2, completed: 2, failed: 0 });
  });
});
