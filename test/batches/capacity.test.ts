// A batch beside interactive traffic at a deployment it can fill: queued work
// leaves the deployment gate's reserve (an eighth of its slots) to
// interactive requests, does not hold back an interactive request while its
// own lines wait at the gate, and interactive requests that wait are admitted
// before it resumes. The worker's CPU controller is off (yield_cpu: false):
// on a busy test machine it would keep the batch from filling the deployment,
// and the gates are what these tests are about. The upstream holds every call
// until the test releases it, so no line finishes (and frees a slot) while
// the test looks, however slow the machine.
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'node:test';
import { startFakeOpenAI, type FakeOpenAI } from '../helpers/fake-openai.js';
import { defaultTestConfig, startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { chatLines, uploadBatchInput, waitForBatch } from '../helpers/batches.js';
import { postChat, waitFor } from '../helpers/routing.js';

const DEPLOYMENT = 'fakeopenai/gpt-4o-mini';

function config(upstreamUrl: string, admission: string): string {
  // The upstream holds calls until the test releases them: the provider's timeouts far off, so a held call
  // fails only if the test never lets it go, however loaded the machine.
  const base = defaultTestConfig({ openaiUrl: upstreamUrl }).replace('timeouts: { connect_ms: 1000, first_byte_ms: 1500, total_ms: 5000 }', 'timeouts: { connect_ms: 20000, first_byte_ms: 30000, total_ms: 60000 }');
  return `${base}
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
  /** Opens every latch a test left closed, so that no upstream call stays held past it. */
  let opens: Array<() => void> = [];
  /** A promise that holds the upstream calls given it until the test calls open(). */
  function latch(): { opened: Promise<void>; open: () => void } {
    let open = () => {};
    const opened = new Promise<void>((resolve) => (open = resolve));
    opens.push(open);
    return { opened, open };
  }
  before(async () => {
    upstream = await startFakeOpenAI();
  });
  afterEach(async () => {
    for (const open of opens) open();
    opens = [];
    upstream.always(undefined);
    await gw?.close();
    gw = undefined;
  });
  after(async () => {
    await upstream.close();
  });

  /** The deployment gate and the worker as one scrape shows them. */
  async function gates(): Promise<{ inFlight: number; queued: number; running: number }> {
    const text = await (await fetch(`${gw!.url}/metrics`)).text();
    const read = (sample: string) => {
      const line = text.split('\n').find((l) => l.startsWith(`${sample} `));
      return line === undefined ? Number.NaN : Number(line.slice(sample.length + 1));
    };
    return {
      inFlight: read(`lanegate_admission_in_flight{gate="${DEPLOYMENT}"}`),
      queued: read(`lanegate_admission_queued{gate="${DEPLOYMENT}"}`),
      running: read('lanegate_queue_running'),
    };
  }

  /**
   * Starts a batch of `n` lines and waits until its lines hold every slot they may (7 of the deployment's 8,
   * their upstream calls held by the test) and every other line the worker started waits at the gate: the worker
   * starts no more while one waits, so from then on nothing moves until the test does.
   */
  async function batchFillingTheDeployment(n: number, tag: string): Promise<{ id: string; waiting: number }> {
    const client = gw!.client();
    const from = upstream.calls.length;
    const file = await uploadBatchInput(client, chatLines(n, 'gpt-fake', tag));
    const batch = await client.batches.create({ input_file_id: file.id, endpoint: '/v1/chat/completions', completion_window: '24h' });
    const { queued } = await waitFor(
      'the batch to hold 7 slots of the deployment upstream, its other started lines waiting at the gate',
      async () => {
        const g = await gates();
        return (upstream.calls.length - from === 7 && g.queued >= 1 && g.running === 7 + g.queued && g) || undefined;
      },
      15_000,
    );
    return { id: batch.id, waiting: queued };
  }

  it('batches – the batch leaves the deployment a free slot: an interactive request beside it is admitted without waiting', async () => {
    // Any wait would outlast the queue timeout (the batch's lines hold their slots until released): a request that has to wait is shed with a 503.
    const held = latch();
    upstream.always({ holdUntil: held.opened });
    gw = await startTestGateway({ yaml: config(upstream.url, '  queue_timeout_ms: 100') });
    const { id } = await batchFillingTheDeployment(24, 'reserve ');
    assert.equal((await gates()).inFlight, 7, 'the batch stops at 7 of 8 slots');
    const from = upstream.calls.length;
    const answer = postChat(gw, { model: 'gpt-fake', messages: [{ role: 'user', content: 'interactive beside the batch' }] });
    let answered = false;
    void answer.then(() => (answered = true));
    // Admitted, it is held upstream like the batch's lines; shed, it is answered at once.
    await waitFor('the interactive request upstream, or its answer', () => answered || upstream.calls.length > from || undefined, 15_000);
    held.open();
    const res = await answer;
    assert.equal(res.status, 200, await res.text());
    const done = await waitForBatch(gw.client(), id, 60_000);
    assert.equal(done.status, 'completed');
    assert.deepEqual(done.request_counts, { total: 24, completed: 24, failed: 0 });
  });

  it('batches – interactive requests that wait at a deployment the batch fills are admitted before the batch starts another line', async () => {
    // The batch's first call is let go alone; the other six and the interactive request in the free slot stay held.
    // Every other call answers at once.
    const first = latch();
    const rest = latch();
    upstream.script({ holdUntil: first.opened }, ...Array.from({ length: 7 }, () => ({ holdUntil: rest.opened })));
    gw = await startTestGateway({ yaml: config(upstream.url, '  queue_timeout_ms: 30000') });
    const { id, waiting } = await batchFillingTheDeployment(24, 'priority ');
    const from = upstream.calls.length;
    const interactiveSince = () => upstream.calls.slice(from).filter((c) => isInteractive(c.body)).length;
    // One takes the free slot at once; three wait for batch lines to finish.
    const answers = Promise.all([0, 1, 2, 3].map((i) => postChat(gw!, { model: 'gpt-fake', messages: [{ role: 'user', content: `interactive ${i}` }] })));
    await waitFor('one interactive request upstream, three waiting at the gate', async () => (interactiveSince() === 1 && (await gates()).queued === waiting + 3) || undefined, 15_000);
    // The slot the batch's line gives back goes to a waiting interactive request, whose answer gives its slot to the
    // next one, and so on: the batch's waiting line and any new one come after the last of them.
    first.open();
    await waitFor('every interactive request upstream', () => interactiveSince() === 4 || undefined, 15_000);
    rest.open();
    for (const res of await answers) assert.equal(res.status, 200, await res.text());
    const since = upstream.calls.slice(from);
    const lastInteractive = since.map((c) => isInteractive(c.body)).lastIndexOf(true);
    // No batch line reached the upstream before the last waiting interactive request did.
    assert.deepEqual(since.slice(0, lastInteractive + 1).filter((c) => !isInteractive(c.body)), []);
    const done = await waitForBatch(gw.client(), id, 60_000);
    assert.deepEqual(done.request_counts, { total: 24, completed: 24, failed: 0 });
  });
});
