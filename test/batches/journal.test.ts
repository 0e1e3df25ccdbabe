// The single instance's journal while it runs: many batches finished without
// a restart leave it within its compaction bound (it does not grow with every
// line ever run), and what compaction kept (each batch, its counts, its files)
// reads the same after a restart.
import assert from 'node:assert/strict';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import OpenAI from 'openai';
import { APP_KEY, defaultTestConfig } from '../helpers/gateway.js';
import { spawnGateway, type GatewayProcess } from '../helpers/gateway-process.js';
import { chatLines, outputLines, uploadBatchInput, waitForBatch } from '../helpers/batches.js';

const MIN_BYTES = 32 * 1024;
const BATCHES = 8;
const LINES = 120;

describe('single-instance journal', () => {
  let dir: string;
  let configFile: string;
  let gw: GatewayProcess | undefined;
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'lanegate-journal-'));
    configFile = path.join(dir, 'gateway.yaml');
    await writeFile(configFile, (defaultTestConfig({}) + `\nqueue: { concurrency: 16, poll_ms: 20, compact_min_bytes: ${MIN_BYTES} }\n`).replaceAll('{{dir}}', dir));
  });
  after(async () => {
    await gw?.kill();
    await rm(dir, { recursive: true, force: true });
  });

  it('journal – stays bounded over many finished lines without a restart; counts and files survive compaction and a restart', async () => {
    gw = await spawnGateway(configFile);
    const client = () => new OpenAI({ apiKey: APP_KEY, baseURL: gw!.baseURL, maxRetries: 0 });
    const journal = path.join(dir, 'queue', 'queue.jsonl');
    const ids: string[] = [];
    const sizes: number[] = [];
    for (let i = 0; i < BATCHES; i++) {
      const file = await uploadBatchInput(client(), chatLines(LINES, 'fast', `journal-${i} `));
      const created = await client().batches.create({ input_file_id: file.id, endpoint: '/v1/chat/completions', completion_window: '24h' });
      const batch = await waitForBatch(client(), created.id, 30_000);
      assert.equal(batch.status, 'completed');
      ids.push(batch.id);
      sizes.push((await stat(journal)).size);
    }
    // One batch's lines alone (queued, then answered) are past the minimum: without compaction the journal holds all of them.
    assert.ok(sizes[0]! > MIN_BYTES, `one batch wrote ${sizes[0]} bytes`);
    const bound = 2 * MIN_BYTES + sizes[0]!;
    assert.ok(sizes.every((s) => s < bound), `journal sizes ${sizes.join(', ')} stay under ${bound}`);
    const check = async () => {
      for (const id of ids) {
        const batch = await client().batches.retrieve(id);
        assert.equal(batch.status, 'completed');
        assert.deepEqual(batch.request_counts, { total: LINES, completed: LINES, failed: 0 });
      }
      assert.equal((await outputLines(client(), (await client().batches.retrieve(ids[0]!)).output_file_id!)).length, LINES);
    };
    await check();
    await gw.stop();
    gw = await spawnGateway(configFile);
    await check();
    assert.ok((await stat(journal)).size < MIN_BYTES, 'compacted at start down to the batch records and their counts');
  });
});
