// Background responses (POST /v1/responses with background: true) through the
// openai SDK: queued at once, run by the queue worker through the Responses
// pipeline, polled to completion; and cancelled while the upstream is slow.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type OpenAI from 'openai';
import { startFakeOpenAI, type FakeOpenAI } from '../helpers/fake-openai.js';
import { OTHER_KEY, startTestGateway, type TestGateway } from '../helpers/gateway.js';

async function poll(client: OpenAI, id: string, until: (status: string | undefined) => boolean): Promise<OpenAI.Responses.Response> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const r = await client.responses.retrieve(id);
    if (until(r.status)) return r;
    if (Date.now() > deadline) throw new Error(`response ${id} still ${r.status}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe('background responses', () => {
  let upstream: FakeOpenAI;
  let gw: TestGateway;
  before(async () => {
    upstream = await startFakeOpenAI();
    gw = await startTestGateway({ openaiUrl: upstream.url, extra: '\nqueue: { poll_ms: 20 }\n' });
  });
  after(async () => {
    await gw.close();
    await upstream.close();
  });

  it('background – created queued, polled to completed, with the answer and one upstream call', async () => {
    const client = gw.client();
    const calls = upstream.calls.length;
    const created = await client.responses.create({ model: 'gpt-fake', input: 'in the background', background: true });
    assert.equal(created.status, 'queued');
    assert.equal(created.background, true);
    const done = await poll(client, created.id, (s) => s === 'completed' || s === 'failed');
    assert.equal(done.status, 'completed');
    assert.equal(done.id, created.id);
    assert.equal(done.output_text, 'Hello from fake-openai: in the background');
    assert.equal(upstream.calls.length - calls, 1);
    await assert.rejects(gw.client(OTHER_KEY).responses.retrieve(created.id), (err: { status?: number }) => err.status === 404);
    const records = (await gw.auditRecords()).filter((r) => r.run_id === created.id);
    assert.equal(records.length, 1, 'the run is audited, linked to the response id');
  });

  it('background – a model the key cannot use ends failed, not lost', async () => {
    const beta = gw.client(OTHER_KEY);
    const created = await beta.responses.create({ model: 'gpt-fake', input: 'not allowed', background: true });
    const done = await poll(beta, created.id, (s) => s !== 'queued' && s !== 'in_progress');
    assert.equal(done.status, 'failed');
    assert.ok(done.error?.code);
  });

  it('background – cancelled while the upstream is slow: stays cancelled', async () => {
    upstream.always({ delayMs: 400 });
    try {
      const client = gw.client();
      const created = await client.responses.create({ model: 'gpt-fake', input: 'cancel me', background: true });
      await poll(client, created.id, (s) => s === 'in_progress');
      const cancelled = await client.responses.cancel(created.id);
      assert.equal(cancelled.status, 'cancelled');
      await new Promise((resolve) => setTimeout(resolve, 600));
      assert.equal((await client.responses.retrieve(created.id)).status, 'cancelled');
    } finally {
      upstream.always(undefined);
    }
  });

  it('background – store: false is refused with a 400 naming store', async () => {
    await assert.rejects(gw.client().responses.create({ model: 'gpt-fake', input: 'x', background: true, store: false }), (err: { status?: number; param?: string }) => err.status === 400 && err.param === 'store');
  });
});
