// The console's spend rollups give the report `lanegate costs` gives (the
// ledger read record by record), for whole days, as files are appended to,
// tampered with and removed; and a second report reads nothing new.
import assert from 'node:assert/strict';
import { appendFile, mkdtemp, readdir, readFile, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { folderLedger, usageReport, type GroupBy } from '../../src/budget/ledger.js';
import { createUsageRollups } from '../../src/budget/usage-rollup.js';
import { createFileBackend } from '../../src/audit/transport/file-sink.js';
import { facetsOf, type PendingRecord } from '../../src/audit/transport/pending.js';
import { createLogger } from '../../src/telemetry/logger.js';

const DAY = 86_400_000;
const today = Math.floor(Date.now() / DAY) * DAY;

describe('usage rollups', () => {
  let dir: string;
  let n = 0;

  async function write(count: number): Promise<void> {
    const backend = createFileBackend({ dir, rotateBytes: 8 * 1024, logger: createLogger({ level: 'silent' }) });
    const items: PendingRecord[] = [];
    for (let i = 0; i < count; i++, n++) {
      const team = ['alpha', 'beta', 'gamma'][n % 3]!;
      const chain = ['green', 'red'][n % 2]!;
      const nano = 1000 + ((n * 7919) % 50_000);
      const record = {
        v: 2, kind: 'request', id: `req-${n}`, time: new Date(today - (n % 4) * DAY + (n % 1000) * 1000).toISOString(),
        key_id: `${team}-key`, app: `${team}-app`, team, model: 'fast', route: { name: 'fast', rule: null, model: n % 5 === 0 ? 'smart' : 'fast' }, provider: 'openai',
        lane: { name: chain }, status: 200, cache: { status: n % 11 === 0 ? 'hit' : 'miss' },
        usage: { prompt_tokens: 10 + (n % 7), completion_tokens: 3 + (n % 5), total_tokens: 13 + (n % 7) + (n % 5) },
        cost: { usd: nano / 1e9, nano_usd: nano, priced: true }, client: n % 3 === 0 ? 'curl' : 'openai-node',
      };
      items.push({ chain, bytes: Buffer.from(JSON.stringify(record)), facets: facetsOf(record) });
    }
    // Batches of 20: the sink rotates between batches, so the records spread over many files.
    for (let i = 0; i < items.length; i += 20) assert.equal((await backend.write(items.slice(i, i + 20))).failed.length, 0);
    await backend.close();
  }

  async function same(rollups: ReturnType<typeof createUsageRollups>, from: number, to: number, by: GroupBy): Promise<void> {
    const expected = await usageReport(folderLedger(dir), from, to, by);
    const got = await rollups.report(from, to, by);
    assert.deepEqual(got, expected, `${by} over ${new Date(from).toISOString()}..${new Date(to).toISOString()}`);
  }

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'lanegate-rollup-'));
    await write(600);
    assert.ok((await readdir(dir)).filter((f) => f.endsWith('.jsonl')).length > 10);
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('rollup – equals the ledger read record by record, by every group and range of whole days', async () => {
    const rollups = createUsageRollups(dir);
    for (const by of ['team', 'app', 'key', 'model', 'provider', 'lane', 'client'] as const) await same(rollups, today - 3 * DAY, today + DAY, by);
    await same(rollups, today - DAY, today, 'team');
    await same(rollups, today - 2 * DAY, today + DAY, 'model');
    assert.equal(await rollups.report(today - DAY + 5, today, 'team'), undefined, 'not whole days: the caller reads the ledger');
  });

  it('rollup – records appended later, a tampered record and a removed file: still equal; a restart starts from the saved rollups', async () => {
    const rollups = createUsageRollups(dir);
    await rollups.warm();
    await write(90);
    await same(rollups, today - 3 * DAY, today + DAY, 'team');
    // Change a cost in place: the hash no longer matches, the record leaves the totals and is counted apart.
    const files = (await readdir(dir)).filter((f) => f.endsWith('.jsonl')).sort();
    const victim = path.join(dir, files[3]!);
    const text = await readFile(victim, 'utf8');
    const edited = text.replace(/"nano_usd":(\d)/, '"nano_usd":9$1');
    assert.notEqual(edited, text);
    await writeFile(victim, edited);
    await same(rollups, today - 3 * DAY, today + DAY, 'team');
    const report = await rollups.report(today - 3 * DAY, today + DAY, 'team');
    assert.equal(report?.integrity.mismatched, 1);
    await unlink(path.join(dir, files[5]!));
    await same(rollups, today - 3 * DAY, today + DAY, 'key');
    // A line being written (no newline yet) is left for the next read.
    await appendFile(path.join(dir, files.at(-1)!), '{"v":2,"kind":"request","id":"half');
    await same(rollups, today - 3 * DAY, today + DAY, 'team');
    assert.ok((await readdir(dir)).includes('.usage-rollups.json'), 'saved beside the files');
    const restarted = createUsageRollups(dir);
    await same(restarted, today - 3 * DAY, today + DAY, 'lane');
  });
});
