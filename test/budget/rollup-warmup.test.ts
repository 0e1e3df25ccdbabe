// The console's spend rollups are built (and, after a restart, loaded) in the
// background on the gateway's event loop: the warm-up must never hold the
// loop for long, or every request arriving meanwhile waits for it. The trail
// here gives each record its own client, so the saved rollups are about as
// large as the trail (tens of MB): one JSON text of them took most of the
// warm-up to parse in one go.
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createUsageRollups } from '../../src/budget/usage-rollup.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { waitFor } from '../helpers/routing.js';

const RECORDS = 150_000;
/** Long ago: the budget counters of this period are not touched. */
const TIME = Date.UTC(2020, 0, 15);

describe('console spend rollups – warm-up beside requests', () => {
  let dir: string;
  let gw: TestGateway | undefined;
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'lanegate-rollup-warmup-'));
    const lines: string[] = [];
    for (let i = 0; i < RECORDS; i++) {
      const record = {
        v: 2, kind: 'request', id: `req-${i}`, time: new Date(TIME + i).toISOString(), key_id: 'k', app: 'a', team: 't', model: 'fast', provider: 'openai',
        lane: { name: 'green' }, status: 200, usage: { prompt_tokens: 3, completion_tokens: 2, total_tokens: 5 }, cost: { usd: 1e-6, nano_usd: 1000, priced: true }, client: `client-${i}`,
      };
      lines.push(JSON.stringify(record));
    }
    await writeFile(path.join(dir, 'export.jsonl'), lines.join('\n') + '\n');
    // The rollups a first start built and saved.
    await createUsageRollups(dir).warm();
    assert.ok((await readdir(dir)).includes('.usage-rollups.json'));
  });
  after(async () => {
    await gw?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('restart – loading the saved rollups never holds the event loop for more than a small part of the warm-up', async (t) => {
    gw = await startTestGateway({ auditDir: dir });
    const delay = monitorEventLoopDelay({ resolution: 5 });
    delay.enable();
    // The gateway serves nothing meanwhile: a request would be audited into the folder and the warm-up would also read and save it.
    const ready = await waitFor(
      'the rollups to be ready',
      () => {
        assert.ok(!/rollups could not be built/.test(gw!.logs()), gw!.logs());
        return /"ms":(\d+)[^\n]*console spend rollups ready/.exec(gw!.logs()) ?? undefined;
      },
      120_000,
    );
    delay.disable();
    const warmMs = Number(ready[1]);
    const maxMs = delay.max / 1e6;
    t.diagnostic(`warm-up ${warmMs} ms, longest hold of the event loop ${maxMs.toFixed(0)} ms`);
    // Whatever the machine's speed, the warm-up is done in slices: none is more than a small part of it.
    assert.ok(maxMs < warmMs / 2, `the event loop was held ${maxMs.toFixed(0)} ms at once during a warm-up of ${warmMs} ms`);
  });
});
