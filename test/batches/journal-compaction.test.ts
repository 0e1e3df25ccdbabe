// The single instance's journal compacted while lines keep being answered:
// the compaction never holds the event loop for long (it writes the new file
// a slice at a time, beside the requests), every write made while it runs is
// in the journal a restart reads, and nothing is written twice.
import assert from 'node:assert/strict';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { openLocalWorkStore } from '../../src/queue/local-store.js';
import type { BatchRecord, Delivery, WorkItem } from '../../src/queue/types.js';

const LINES = 6_000;
/** Past what queueing the lines writes (~64 MB): compaction starts once 700 or so lines are answered. */
const COMPACT_MIN_BYTES = 68 * 1024 * 1024;
/** Long prompts and answers: a large journal of few objects, so the collector's pauses stay short next to writing it out. */
const PROMPT = 'Summarise the following paragraph in one sentence. '.repeat(200);
const ANSWER = JSON.stringify({ id: 'batch_req_x', custom_id: 'c', response: { status_code: 200, body: { choices: [{ message: { content: PROMPT } }] } } });

function batchRecord(id: string): BatchRecord {
  return {
    id, team: 'team-alpha', keyId: 'alpha', lane: 'default', endpoint: '/v1/chat/completions', input_file_id: 'file-x', completion_window: '24h', metadata: null,
    status: 'in_progress', created_at: 1, expires_at: 86_401, in_progress_at: 1, finalizing_at: null, completed_at: null, failed_at: null, expired_at: null,
    cancelling_at: null, cancelled_at: null, output_file_id: null, error_file_id: null, errors: null, total: LINES,
  };
}

function items(owner: string): WorkItem[] {
  return Array.from({ length: LINES }, (_, i) => ({
    id: `${owner}:${i}`, kind: 'batch', owner, index: i, customId: `line-${i}`, keyId: 'alpha',
    body: { model: 'fast', messages: [{ role: 'user', content: `${PROMPT}${i}` }] }, enqueuedAt: Date.now(),
  }));
}

describe('single-instance journal – compaction while running', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'lanegate-compaction-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('compaction – short holds of the event loop; writes made meanwhile survive a restart, once each', async (t) => {
    const journal = path.join(dir, 'queue.jsonl');
    const store = await openLocalWorkStore(dir, { compactMinBytes: COMPACT_MIN_BYTES });
    const owner = 'batch_compaction';
    await store.putBatch(batchRecord(owner));
    const queued = items(owner);
    for (let i = 0; i < LINES; i += 1_000) await store.enqueue(queued.slice(i, i + 1_000));
    const deliveries = await store.claim('local', LINES);
    assert.equal(deliveries.length, LINES);
    const inode = (await stat(journal)).ino;

    // What one JSON text of the state at the compaction costs here: the old compaction held the loop that long.
    const started = performance.now();
    JSON.stringify(queued.slice(700));
    JSON.stringify(Array.from({ length: 700 }, (_, i) => ({ e: 'done', owner, id: `${owner}:${i}`, r: { index: i, outcome: 'ok', line: ANSWER } })));
    const oneTextMs = performance.now() - started;

    // All but the last thousand lines answered (a tenth dropped), in waves, with the batch record changed now and then.
    const delay = monitorEventLoopDelay({ resolution: 5 });
    delay.enable();
    const answered = deliveries.slice(0, LINES - 1_000);
    const outcome = (d: Delivery) => (d.item.index % 10 === 9 ? store.drop(d) : store.complete(d, { index: d.item.index, outcome: 'ok', line: ANSWER }).then((won) => assert.ok(won)));
    for (let i = 0; i < answered.length; i += 250) {
      await Promise.all(answered.slice(i, i + 250).map(outcome));
      if (i % 1_000 === 0) await store.updateBatch(owner, (b) => ({ ...b, metadata: { wave: String(i) } }));
    }
    // The new journal takes its place in the writer's turn once it is written: the last waves may have been written before that.
    const deadline = Date.now() + 60_000;
    while ((await stat(journal)).ino === inode) {
      assert.ok(Date.now() < deadline, 'the journal was compacted');
      await new Promise((r) => setTimeout(r, 20));
    }
    delay.disable();
    const maxMs = delay.max / 1e6;
    t.diagnostic(`one JSON text of the state: ${oneTextMs.toFixed(0)} ms; longest hold of the event loop while compacting: ${maxMs.toFixed(0)} ms`);
    // The old compaction held it longer than that (it also pruned, and wrote every result); a slice is ~10 ms, and the
    // margin is for a busy machine taking the CPU away now and then.
    assert.ok(maxMs < Math.max((oneTextMs * 2) / 3, 50), `the event loop was held ${maxMs.toFixed(0)} ms at once; one JSON text of the state takes ${oneTextMs.toFixed(0)} ms`);
    await store.close();

    const reopened = await openLocalWorkStore(dir, { compactMinBytes: COMPACT_MIN_BYTES });
    try {
      const dropped = answered.filter((d) => d.item.index % 10 === 9).length;
      assert.deepEqual(await reopened.counts(owner), { completed: answered.length - dropped, failed: 0, cancelled: 0 });
      assert.deepEqual((await reopened.getBatch(owner))?.metadata, { wave: String(Math.floor((answered.length - 1) / 1_000) * 1_000) });
      // Exactly the lines not answered are queued again, each once.
      const again = await reopened.claim('local', LINES);
      assert.deepEqual(
        again.map((d) => d.item.index),
        deliveries.slice(LINES - 1_000).map((d) => d.item.index),
      );
      for (const d of answered) if (d.item.index % 10 !== 9) assert.ok(await reopened.isDone(d.item), `line ${d.item.index} is done`);
      const indexes: number[] = [];
      for await (const chunk of reopened.eachResults(owner)) indexes.push(...chunk.map((r) => r.index));
      assert.equal(new Set(indexes).size, indexes.length, 'each result once');
      assert.equal(indexes.length, answered.length - dropped);
    } finally {
      await reopened.close();
    }
  });
});
