// Retention: each lane's audit.retention_days, applied by a sweeper inside
// the gateway (every audit.sweep_interval_s), and `lanegate audit purge
// --before` for manual runs. Every purge is itself an audit record.
//
// File sink: whole files are removed, never rewritten. A file of day D is
// removed once D ended more than the lane's retention ago, oldest first, so a
// chain only ever loses its beginning. Before anything is deleted a purge
// record listing each removed file and the hash of its last record is
// appended to the _purges chain (own files, never swept); the first record
// left in a chain points (`prev`) at one of those hashes, which is how
// `audit verify` tells a purge from a deletion.
//
// Stream sink: XTRIM <lane stream> MINID <cutoff>, and the purge record goes
// to the _purges stream.
import { randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { appendFile, mkdir, open, readFile, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import type { RedisStore } from '../../stores/redis.js';
import type { Logger } from '../../telemetry/logger.js';
import { GENESIS, lineHash, sealLine } from '../chain.js';
import { dayEndMs, fileName, indexPathOf, lastLine, listChains, utcDay, type AuditFile } from '../files.js';
import type { AuditMetrics } from '../metrics.js';
import { auditStreams, streamKey } from '../streams.js';
import { AUDIT_RECORD_VERSION, PURGE_CHAIN, type AuditPurgeRecord } from '../schema.js';

const DAY_MS = 86_400_000;

export interface RetentionTarget {
  sink: 'file' | 'redis';
  dir: string;
  redis?: RedisStore;
  logger: Logger;
  metrics?: AuditMetrics;
}

type PurgeChain = AuditPurgeRecord['chains'][number];

/**
 * Removes what each chain's cutoff has expired. `cutoff(chain)` is the instant
 * before which records go; undefined keeps the chain whole.
 */
export async function purge(
  target: RetentionTarget,
  options: { reason: 'retention' | 'manual'; before: number | null; cutoff: (chain: string) => number | undefined; skip?: ReadonlySet<string> },
): Promise<AuditPurgeRecord | undefined> {
  const chains: PurgeChain[] = [];
  const removals: AuditFile[] = [];
  if (target.sink === 'file') {
    for (const [chain, files] of await listChains(target.dir)) {
      if (chain === PURGE_CHAIN) continue;
      const cutoff = options.cutoff(chain);
      if (cutoff === undefined) continue;
      const expired: AuditFile[] = [];
      // Oldest first, and stop at the first file that stays: a chain only loses its beginning.
      for (const f of files) {
        if (dayEndMs(f.day) > cutoff || options.skip?.has(f.path)) break;
        expired.push(f);
      }
      if (expired.length === 0) continue;
      const entry: PurgeChain = { chain, files: [], records: 0, through: new Date(dayEndMs(expired.at(-1)!.day)).toISOString() };
      for (const f of expired) {
        const records = await countLines(f.path);
        const tail = await lastLine(f.path).catch(() => ({ line: undefined }));
        entry.files.push({ file: f.name, records, last_hash: tail.line ? (lineHash(tail.line) ?? null) : null });
        entry.records += records;
      }
      chains.push(entry);
      removals.push(...expired);
    }
  } else {
    const redis = target.redis!;
    for (const [chain, key] of await auditStreams(redis)) {
      if (chain === PURGE_CHAIN) continue;
      const cutoff = options.cutoff(chain);
      if (cutoff === undefined) continue;
      const removed = Number(await redis.client.xtrim(key, 'MINID', Math.floor(cutoff)));
      if (removed > 0) chains.push({ chain, files: [], records: removed, through: new Date(cutoff).toISOString() });
    }
  }
  if (chains.length === 0) return undefined;

  const record: AuditPurgeRecord = {
    v: AUDIT_RECORD_VERSION,
    kind: 'purge',
    id: randomUUID(),
    time: new Date().toISOString(),
    reason: options.reason,
    before: options.before === null ? null : new Date(options.before).toISOString(),
    sink: target.sink,
    chains,
  };
  if (target.sink === 'file') {
    // The record first: a purge cut short leaves anchors for files still there, never the reverse.
    await appendPurgeRecord(target.dir, record);
    for (const f of removals) {
      await rm(f.path, { force: true });
      await rm(indexPathOf(f.path), { force: true });
    }
  } else {
    const redis = target.redis!;
    await redis.client.xadd(streamKey(redis, PURGE_CHAIN), '*', 'id', record.id, 'kind', 'purge', 'time', record.time, 'record', JSON.stringify(record));
  }
  for (const c of chains) target.metrics?.purged.labels(c.chain, options.reason).inc(c.records);
  target.logger.info(
    { reason: options.reason, chains: chains.map((c) => ({ chain: c.chain, records: c.records, files: c.files.length, through: c.through })) },
    'audit records purged (recorded in the _purges chain)',
  );
  return record;
}

/**
 * The hash a chain continues from when all its files were purged: the last
 * removed file's last record, from the newest purge record naming the chain.
 */
export async function latestAnchor(dir: string, chain: string): Promise<string | undefined> {
  const files = (await listChains(dir)).get(PURGE_CHAIN) ?? [];
  for (let i = files.length - 1; i >= 0; i--) {
    const lines = (await readFile(files[i]!.path, 'utf8').catch(() => '')).split('\n').filter(Boolean).reverse();
    for (const line of lines) {
      try {
        const record = JSON.parse(line) as AuditPurgeRecord;
        const entry = record.chains?.find((c) => c.chain === chain);
        const hash = entry?.files.at(-1)?.last_hash;
        if (hash) return hash;
      } catch {
        // verify reports it
      }
    }
  }
  return undefined;
}

/** The sweeper's cutoffs: each lane's retention; unknown chains and _gateway use the default. */
export function retentionCutoff(now: number, laneDays: (chain: string) => number | undefined, defaultDays: number): (chain: string) => number | undefined {
  return (chain) => (chain === PURGE_CHAIN ? undefined : now - (laneDays(chain) ?? defaultDays) * DAY_MS);
}

async function countLines(file: string): Promise<number> {
  let n = 0;
  try {
    for await (const chunk of createReadStream(file) as AsyncIterable<Buffer>) {
      for (let at = chunk.indexOf(0x0a); at >= 0; at = chunk.indexOf(0x0a, at + 1)) n++;
    }
  } catch {
    return n;
  }
  return n;
}

/**
 * Appends one record to the _purges chain. Both the gateway's sweeper and the
 * CLI append here, so a lock file makes them take turns; the chain is resumed
 * from disk each time.
 */
export async function appendPurgeRecord(dir: string, record: AuditPurgeRecord): Promise<void> {
  await mkdir(dir, { recursive: true });
  const release = await lock(path.join(dir, `${PURGE_CHAIN}.lock`));
  try {
    const files = (await listChains(dir)).get(PURGE_CHAIN) ?? [];
    const newest = files.at(-1);
    let prev = GENESIS;
    if (newest) {
      const tail = await lastLine(newest.path);
      prev = (tail.line && lineHash(tail.line)) || GENESIS;
    }
    const day = utcDay(Date.now());
    const target = newest && newest.day === day ? newest.path : path.join(dir, fileName(PURGE_CHAIN, day, 0));
    const { line } = sealLine(JSON.stringify(record), prev);
    await appendFile(target, `${line}\n`, { mode: 0o640 });
    const handle = await open(target, 'r');
    await handle.datasync().finally(() => handle.close());
  } finally {
    await release();
  }
}

async function lock(file: string): Promise<() => Promise<void>> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      const handle = await open(file, 'wx', 0o640);
      await handle.writeFile(JSON.stringify({ pid: process.pid, at: new Date().toISOString() }));
      await handle.close();
      return () => rm(file, { force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      // A holder that died leaves its lock behind: purges take seconds, so an old one is stale.
      const age = Date.now() - (await stat(file).catch(() => ({ mtimeMs: Date.now() }))).mtimeMs;
      if (age > 60_000) await rm(file, { force: true });
      // eslint-disable-next-line preserve-caught-error -- the caught error is the expected EEXIST; the message names the holder
      else if (Date.now() > deadline) throw new Error(`${file} is held by another purge (${await readFile(file, 'utf8').catch(() => '?')}); try again later`);
      else await new Promise((r) => setTimeout(r, 50));
    }
  }
}

export interface Sweeper {
  /** One sweep now (the timer calls this too). */
  run(): Promise<AuditPurgeRecord | undefined>;
  stop(): void;
}

export function startSweeper(
  target: RetentionTarget,
  options: { intervalS: number; laneDays: (chain: string) => number | undefined; defaultDays: number; activeFiles?: () => ReadonlySet<string> },
): Sweeper {
  let running: Promise<AuditPurgeRecord | undefined> | undefined;
  const run = () =>
    (running ??= purge(target, {
      reason: 'retention',
      before: null,
      cutoff: retentionCutoff(Date.now(), options.laneDays, options.defaultDays),
      ...(options.activeFiles ? { skip: options.activeFiles() } : {}),
    })
      .catch((err: unknown) => {
        target.logger.error({ err: String(err) }, 'audit retention sweep failed; retrying at the next interval');
        return undefined;
      })
      .finally(() => {
        running = undefined;
      }));
  // The first sweep waits a little: start-up has more urgent work.
  const first = options.intervalS > 0 ? setTimeout(() => void run(), Math.min(60_000, options.intervalS * 1000)) : undefined;
  const timer = options.intervalS > 0 ? setInterval(() => void run(), options.intervalS * 1000) : undefined;
  first?.unref();
  timer?.unref();
  return {
    run,
    stop() {
      clearTimeout(first);
      clearInterval(timer);
    },
  };
}
