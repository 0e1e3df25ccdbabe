// `lanegate budgets rebuild`: after Redis lost the budget counters, the
// operator restores them from every replica's ledger at once. The gateways
// refuse budgeted requests until this has run (see epoch.ts), because no one
// of them holds every replica's spend.
import path from 'node:path';
import { parseArgs } from 'node:util';
import { DateTime } from 'luxon';
import { waitReady } from '../audit/cli.js';
import { holdsRecords } from '../audit/read/file-reader.js';
import { loadConfig, resolveConfigPath } from '../config/load.js';
import { createCommandRedis } from '../services.js';
import type { RedisStore } from '../stores/redis.js';
import { compileLimits } from './compile.js';
import { ledgerSinceKey, newMarker } from './epoch.js';
import { formatUsd } from './pricing.js';
import { describeSource, folderLedger, ledgerSource, rebuildCounters, type LedgerSource } from './ledger.js';
import { createRedisBudgetStore } from './redis-store.js';

export const BUDGETS_USAGE = `  budgets rebuild --ledger DIR [--ledger DIR]... [--waive REASON] [--config PATH]
                                 after Redis lost the budget counters: sum the current
                                 day's and month's spend over every replica's audit folder
                                 (one --ledger each; with audit.sink: redis, the streams
                                 too), write it to Redis and let the gateways admit
                                 budgeted requests again. --waive accepts a rebuild that
                                 misses some spend (a lost folder, streams gone with
                                 Redis) and records why.`;

/**
 * Whether the audit streams hold every record of the current month: they do
 * only if the key saying since when they are complete survived (Redis losing
 * everything loses it with the streams) and that time is not inside the month.
 * Records reach the streams again as soon as gateways serve after a loss, so
 * "are there streams" would say nothing.
 */
async function streamsComplete(redis: RedisStore, timeZone: string): Promise<boolean> {
  const since = await redis.client.get(ledgerSinceKey(redis));
  if (since === null) return false;
  return Number(since) <= DateTime.now().setZone(timeZone).startOf('month').toMillis();
}

export async function budgetsCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  let flags: { ledger?: string[]; waive?: string };
  try {
    flags = parseArgs({ args: rest, options: { ledger: { type: 'string', multiple: true }, waive: { type: 'string' }, config: { type: 'string' } } }).values;
  } catch (err) {
    console.error(`${(err as Error).message}\nUsage: lanegate\n${BUDGETS_USAGE}`);
    return 2;
  }
  if (sub !== 'rebuild') {
    console.error(`Usage: lanegate\n${BUDGETS_USAGE}`);
    return 2;
  }
  const waived = flags.waive?.trim();
  if (flags.waive !== undefined && !waived) {
    console.error('--waive takes the reason, e.g. --waive "replica b\'s volume was lost (INC-123)"; it is recorded with the rebuild.');
    return 2;
  }
  const loaded = await loadConfig(resolveConfigPath(rest, process.env));
  const config = loaded.config;
  if (!config.redis.url) {
    console.error('redis.url is not set: each gateway keeps its budget counters in memory and rebuilds them from its own ledger at start. Nothing to rebuild.');
    return 2;
  }
  const dirs = (flags.ledger ?? []).map((d) => path.resolve(d));
  const problems: string[] = [];
  for (const dir of dirs) if (!(await holdsRecords(dir))) problems.push(`--ledger ${dir} holds no audit records (*.jsonl): is it a replica's audit.dir?`);
  if (dirs.length === 0 && config.audit.sink !== 'redis') {
    problems.push("name every replica's audit folder with --ledger (one per replica: each holds only that replica's spend)");
  }
  if (problems.length > 0 && !waived) {
    for (const p of problems) console.error(p);
    return 2;
  }

  const redis: RedisStore = createCommandRedis(config.redis);
  try {
    if (!(await waitReady(redis.ping))) {
      console.error('Redis is not reachable (redis.url); the counters go there.');
      return 1;
    }
    const sources: LedgerSource[] = dirs.map((dir) => folderLedger(dir));
    const limits = compileLimits(config);
    const complete = config.audit.sink === 'redis' && (await streamsComplete(redis, limits.timezone));
    if (config.audit.sink === 'redis') {
      if (!complete && !waived) {
        console.error(
          'audit.sink is redis, and the audit streams do not hold the whole month: Redis lost them with the counters (or they were lost earlier this month). Pass the folders of an export of the missing records with --ledger and accept the rest with --waive REASON.',
        );
        return 1;
      }
      sources.push(ledgerSource(config.audit, redis));
    }
    const names = sources.map(describeSource);
    const marker = newMarker('rebuild', { sources: names, ...(waived ? { waived } : {}) });
    const result = await rebuildCounters(createRedisBudgetStore(redis), limits, sources, {
      seed: { marker: JSON.stringify(marker), clearLoss: true },
    });
    // From now on the streams hold every record again; what came before is in these counters.
    if (config.audit.sink === 'redis' && !complete) await redis.client.set(ledgerSinceKey(redis), String(Date.now()));
    console.log('Current day and month, per ledger:');
    for (const s of result.sources) console.log(`  ${s.source}: ${s.records} requests, $${formatUsd(s.nanoUsd)}`);
    const total = result.sources.reduce((n, s) => n + s.nanoUsd, 0);
    console.log(`Total $${formatUsd(total)} in ${result.counters} budget counters; epoch ${marker.epoch}${waived ? `, waived: ${waived}` : ''}.`);
    console.log('The gateways admit budgeted requests again within a few seconds (their next check of the marker).');
    return 0;
  } finally {
    await redis.close();
  }
}
