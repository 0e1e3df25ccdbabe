// A batch beside interactive traffic at a deployment it can fill: queued work
// leaves the deployment gate's reserve (an eighth of its slots) to
// interactive requests, does not hold back an interactive request while its
// own lines wait at the gate, and interactive requests that wait are admitted
// before it resumes. The worker's CPU controller is off (yield_cpu: false):
// on a busy test machine it would keep the batch from filling the deployment,
// and the gates are what these tests are about.
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'node:test';
import { startFakeOpenAI, type FakeOpenAI } from '../helpers/fake-openai.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { chatLines, uploadBatchInput, waitForBatch } from '../helpers/batches.js';
import { metricValue, postChat, waitFor } from '../helpers/routing.js';

const DEPLOYMENT = 'fakeopenai/gpt-4o-mini';
/** The upstream holds each call this long, so the batch's lines hold their slots while the test looks. */
const UPSTREAM_MS = 400;

function extra(admission: string): string {
  return `
queue: { concurrency: 16, poll_ms: 20, backoff_ms: 10, yield_cpu: false }
admission:
${admission}
  deployments: { "${DEPLOYMENT}": { max_inflight: 8, max_queue: 16 } }
`;
}

const isInteractive = (body: Record<string, unknown>) => JSON.stringify(body.messages).includes('interactive');

describe('batch capacity beside interactive traffic', () => {
  let upstream: FakeOpenAI;
  let gw: TestGateway | undefined;
  before(async () => {
    upstream = await startFakeOpenAI();
    upstream.always({ delayMs: UPSTREAM_MS });
  });
  afterEach(async () => {
    await gw?.close();
    gw = undefined;
  });
  after(async () => {
    await upstream.close();
  });

  /** Starts a batch of `n` lines and waits until its lines hold every slot they may: 7 of the deployment's 8. */
  async function batchFillingTheDeployment(n: number, tag: string): Promise<string> {
    const client = gw!.client();
    const file = await uploadBatchInput(client, chatLines(n, 'gpt-fake', tag));
    const batch = await client.batches.create({ input_file_id: file.id, endpoint: '/v1/chat/completions', completion_window: '24h' });
    await waitFor('the batch to hold 7 slots of the deployment', async () => ((await metricValue(gw!, `lanegate_admission_in_flight{gate="${DEPLOYMENT}"}`)) ?? 0) >= 7 || undefined, 15_000);
    return batch.id;
  }

  it('batches – the batch leaves the deployment a free slot: an interactive request beside it is admitted without waiting', async () => {
    // Any wait would outlast the queue timeout (the upstream holds a slot 400 ms): a request that has to wait is shed with a 503.
    gw = await startTestGateway({ openaiUrl: upstream.url, extra: extra('  queue_timeout_ms: 100') });
    const id = await batchFillingTheDeployment(24, 'reserve ');
    assert.equal(await metricValue(gw, `lanegate_admission_in_flight{gate="${DEPLOYMENT}"}`), 7, 'the batch stops at 7 of 8 slots');
    const res = await postChat(gw, { model: 'gpt-fake', messages: [{ role: 'user', content: 'interactive beside the batch' }] });
    assert.equal(res.status, 200, await res.text());
    const done = await waitForBatch(gw.client(), id, 60_000);
    assert.equal(done.status, 'completed');
    assert.deepEqual(done.request_counts, { total: 24, completed: 24, failed: 0 });
  });

  it('batches – interactive requests that wait at a deployment the batch fills are admitted before the batch starts another line', async () => {
    gw = await startTestGateway({ openaiUrl: upstream.url, extra: extra('  queue_timeout_ms: 5000') });
    const id = await batchFillingTheDeployment(24, 'priority ');
    const from = upstream.calls.length;
    // One takes the free slot at once; three wait for batch lines to finish.
    const answers = await Promise.all([0, 1, 2, 3].map((i) => postChat(gw!, { model: 'gpt-fake', messages: [{ role: 'user', content: `interactive ${i}` }] })));
    for (const res of answers) assert.equal(res.status, 200, await res.text());
    const since = upstream.calls.slice(from);
    const lastInteractive = since.map((c) => isInteractive(c.body)).lastIndexOf(true);
    assert.equal(since.filter((c) => isInteractive(c.body)).length, 4);
    // No batch line reached the upstream before the last waiting interactive request did.
    assert.deepEqual(since.slice(0, lastInteractive + 1).filter((c) => !isInteractive(c.body)), []);
    const done = await waitForBatch(gw.client(), id, 60_000);
    assert.deepEqual(done.request_counts, { total: 24, completed: 24, failed: 0 });
  });
});
