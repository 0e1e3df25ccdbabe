// Two replicas on one Redis (one in this process, one a child process): a
// replica that claimed lines and then lost its room for them (interactive
// traffic filled it while its claim was on the way) hands them back, and the
// idle replica runs them, while the busy one is still busy. Before, it kept
// them, renewing their claims, for as long as it stayed busy.
//
// The busy replica reaches Redis through a proxy that holds its commands:
// its claim leaves while it has room, the batch is queued and the replica is
// filled meanwhile, and the claim is answered with the lines after that.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import OpenAI from 'openai';
import { startFakeOpenAI, type FakeOpenAI } from '../helpers/fake-openai.js';
import { APP_KEY, defaultTestConfig, startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { spawnGateway, type GatewayProcess } from '../helpers/gateway-process.js';
import { startHeldProxy, type HeldProxy } from '../helpers/held-proxy.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';
import { metricValue, postChat, waitFor } from '../helpers/routing.js';
import { chatLines, uploadBatchInput } from '../helpers/batches.js';

const LINES = 4;
/** Interactive clients on the busy replica: more than its two slots, so some always wait. */
const CLIENTS = 5;

describe('work queue on Redis – a busy replica hands back the lines it cannot start', () => {
  let upstream: FakeOpenAI;
  let redis: TestRedis;
  let proxy: HeldProxy;
  let dir: string;
  let busy: TestGateway;
  let idle: GatewayProcess;
  before(async () => {
    upstream = await startFakeOpenAI();
    // Each call holds its slot a second (under the upstream's 1.5 s first-byte timeout).
    upstream.always({ delayMs: 1_000 });
    redis = await startRedis();
    proxy = await startHeldProxy({ host: '127.0.0.1', port: redis.port });
    dir = await mkdtemp(path.join(tmpdir(), 'lanegate-hand-back-'));
    const shared = `files: { dir: "${dir}/files" }\n`;
    // Its commands wait as long as the proxy holds them (a claim that timed out would be lost to it, and taken over
    // after the claim timeout). Two global slots and no reserve for interactive requests under 8: batch work gets a slot only when both are free of them.
    busy = await startTestGateway({
      openaiUrl: upstream.url,
      extra: `
redis: { url: "${proxy.url}", key_prefix: hand-back, command_timeout_ms: 30000 }
queue: { concurrency: ${LINES}, claim_idle_ms: 3000, poll_ms: 20, yield_cpu: false }
admission: { queue_timeout_ms: 30000, global: { max_inflight: 2, max_queue: 16 } }
${shared}`,
    });
    const configFile = path.join(dir, 'idle.yaml');
    const idleExtra = `
redis: { url: "${redis.url}", key_prefix: hand-back }
queue: { concurrency: ${LINES}, claim_idle_ms: 3000, poll_ms: 1000 }
${shared}`;
    await writeFile(configFile, (defaultTestConfig({ openaiUrl: upstream.url }) + idleExtra).replaceAll('{{dir}}', dir));
    idle = await spawnGateway(configFile);
  });
  after(async () => {
    proxy?.release();
    await idle?.kill();
    await busy?.close();
    await proxy?.close();
    await upstream?.close();
    await redis?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('hand back – lines claimed by a replica that then has no room run on the idle one while it stays busy', async () => {
    const viaIdle = new OpenAI({ apiKey: APP_KEY, baseURL: idle.baseURL, maxRetries: 0 });
    const file = await uploadBatchInput(viaIdle, chatLines(LINES, 'gpt-fake', 'hand-back '));

    // The busy replica's next claim leaves (it has room) and waits in the proxy.
    proxy.hold();
    await waitFor('the busy replica to send its claim', () => (/XREADGROUP|XAUTOCLAIM/i.test(proxy.held()) ? true : undefined), 10_000);

    // Interactive traffic fills it: both slots held (their upstream calls arrived), the other clients waiting.
    const interactive = () => upstream.calls.filter((c) => JSON.stringify(c.body).includes('interactive')).length;
    const before = interactive();
    let stop = false;
    const clients = Array.from({ length: CLIENTS }, async (_, i) => {
      while (!stop) {
        const res = await postChat(busy, { model: 'gpt-fake', messages: [{ role: 'user', content: `interactive ${i}` }] });
        assert.equal(res.status, 200, await res.text());
      }
    });
    try {
      await waitFor('interactive requests to fill the busy replica', () => (interactive() - before >= 2 ? true : undefined), 10_000);

      // Queued now, through the idle replica; then the busy one's claim goes on and takes the lines.
      const created = await viaIdle.batches.create({ input_file_id: file.id, endpoint: '/v1/chat/completions', completion_window: '24h' });
      proxy.release();

      // While the busy replica stays full, every line is answered: by the idle one.
      const done = await waitFor(
        'the batch to complete while the busy replica is full',
        async () => {
          const b = await viaIdle.batches.retrieve(created.id);
          return b.status === 'completed' ? b : undefined;
        },
        20_000,
      );
      assert.deepEqual(done.request_counts, { total: LINES, completed: LINES, failed: 0 });
      assert.equal(await metricValue(busy, 'lanegate_admission_in_flight{gate="global"}'), 2, 'the busy replica is still full');
      assert.equal((await metricValue(busy, 'lanegate_queue_lines_total{kind="batch",outcome="ok"}')) ?? 0, 0, 'the busy replica ran none of them');
    } finally {
      stop = true;
      await Promise.all(clients);
    }
  });
});
