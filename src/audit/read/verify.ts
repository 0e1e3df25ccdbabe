// `lanegate audit verify`: walks every chain of a file-sink folder and
// reports, per chain, the first record that is not what the chain says it
// should be: a changed record (its hash no longer matches), a missing one
// (the next record's `prev` points at a hash that is not there), a torn line,
// or a chain whose beginning was removed without a purge record.
//
// It also reports answered requests whose records were lost in a crash:
// those a `loss` record names (the gateway found them at its next start),
// and, before that start, those the intent log of a run that is no longer
// running promised but that are in neither the chains nor the spool (see
// transport/intents.ts and crash-check.ts).
import { createReadStream } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { checkLine, GENESIS } from '../chain.js';
import { findInSpool, readIntents } from './crash-check.js';
import { intentsDir } from '../transport/intents.js';
import { listChains, type AuditFile } from '../files.js';
import { PURGE_CHAIN, type AuditLossRecord, type AuditPurgeRecord } from '../schema.js';

export interface VerifyProblem {
  file: string;
  /** 1-based line number in the file. */
  line: number;
  /** The record's id, when the line could be read. */
  id: string | null;
  reason: string;
}

export interface ChainReport {
  chain: string;
  files: number;
  records: number;
  problem?: VerifyProblem;
}

export interface LostRequest {
  id: string;
  lane: string | null;
  /** `loss record`: named by a loss record in the trail; `intent log`: found by this check, before the gateway started again. */
  source: 'loss record' | 'intent log';
}

export interface VerifyReport {
  dir: string;
  /** Every chain intact and no answered request without its record. */
  ok: boolean;
  /** Answered requests whose records a crash lost. */
  lost: LostRequest[];
  /** Intent segments of a gateway running on this host: its records may still be on their way, so they were not compared. */
  liveIntents: number;
  chains: ChainReport[];
  /** Version 1 files (audit-YYYY-MM-DD.jsonl) carry no chain to check. */
  unchained: string[];
}

export async function verifyDir(dir: string, o: { spoolDir?: string } = {}): Promise<VerifyReport> {
  const chains = await listChains(dir);
  const anchors = await purgeAnchors(chains.get(PURGE_CHAIN) ?? []);
  const intents = await readIntents(intentsDir(dir), { skipLive: true });
  const walk: Walk = { missing: new Set(intents.ids.keys()), lost: [] };
  const reports: ChainReport[] = [];
  // The purge chain first: the others' anchors are only as good as it is.
  const names = [...chains.keys()].sort((a, b) => (a === PURGE_CHAIN ? -1 : b === PURGE_CHAIN ? 1 : a < b ? -1 : 1));
  for (const chain of names) reports.push(await verifyChain(chain, chains.get(chain)!, anchors.get(chain) ?? new Set(), walk));
  if (walk.missing.size > 0) await findInSpool(walk.missing, o.spoolDir ?? `${dir.replace(/\/+$/, '')}-spool`, intents.since);
  const named = new Set(walk.lost.map((l) => l.id));
  for (const id of walk.missing) if (!named.has(id)) walk.lost.push({ id, lane: intents.ids.get(id) || null, source: 'intent log' });
  const unchained = (await readdir(dir).catch(() => [] as string[])).filter((n) => /^audit-\d{4}-\d{2}-\d{2}\.jsonl$/.test(n)).sort();
  return { dir, ok: reports.every((r) => !r.problem) && walk.lost.length === 0, lost: walk.lost, liveIntents: intents.live, chains: reports, unchained };
}

/** What the chain walk collects besides the chains' own state. */
interface Walk {
  /** Ids a dead run's intent log promised, not yet seen in the trail. */
  missing: Set<string>;
  lost: LostRequest[];
}

const LOSS_KIND = '"kind":"loss"';

function noteLine(walk: Walk, line: string): void {
  const head = line.slice(0, 400);
  if (walk.missing.size > 0) {
    const id = idOf(head);
    if (id) walk.missing.delete(id);
  }
  if (head.includes(LOSS_KIND)) {
    try {
      const record = JSON.parse(line) as AuditLossRecord;
      if (record.kind === 'loss') for (const r of record.requests) walk.lost.push({ id: r.id, lane: r.lane, source: 'loss record' });
    } catch {
      // reported by the chain walk
    }
  }
}

async function purgeAnchors(files: AuditFile[]): Promise<Map<string, Set<string>>> {
  const anchors = new Map<string, Set<string>>();
  for (const f of files) {
    for await (const line of lines(f.path)) {
      let record: AuditPurgeRecord;
      try {
        record = JSON.parse(line) as AuditPurgeRecord;
      } catch {
        continue; // reported by the chain walk
      }
      for (const c of record.chains ?? []) {
        let set = anchors.get(c.chain);
        if (!set) anchors.set(c.chain, (set = new Set()));
        for (const removed of c.files ?? []) if (removed.last_hash) set.add(removed.last_hash);
      }
    }
  }
  return anchors;
}

async function verifyChain(chain: string, files: AuditFile[], anchors: ReadonlySet<string>, walk: Walk): Promise<ChainReport> {
  const report: ChainReport = { chain, files: files.length, records: 0 };
  let last: string | undefined;
  for (const f of files) {
    let n = 0;
    for await (const line of lines(f.path)) {
      n++;
      noteLine(walk, line);
      const fail = (reason: string): ChainReport => ({ ...report, problem: { file: f.name, line: n, id: idOf(line), reason } });
      if (line === '') return fail('an empty line');
      const check = checkLine(line);
      if (!check.ok) return fail(check.reason);
      if (last === undefined) {
        if (check.prev !== GENESIS && !anchors.has(check.prev)) {
          return fail('the chain begins with a record whose predecessor is missing: records were removed without a purge record');
        }
      } else if (check.prev !== last) {
        return fail(
          anchors.has(check.prev)
            ? 'records before this one were purged while later ones were kept: the chain has a hole'
            : 'this record does not follow the one before it: records are missing or out of order',
        );
      }
      last = check.hash;
      report.records++;
    }
  }
  return report;
}

function idOf(line: string): string | null {
  const m = /"id":"([^"]{1,200})"/.exec(line);
  return m ? m[1]! : null;
}

/** Lines of a file; the last one included even without its newline (a torn write shows as a bad line). */
async function* lines(file: string): AsyncGenerator<string> {
  const rl = createInterface({ input: createReadStream(file, 'utf8'), crlfDelay: Infinity });
  for await (const line of rl) yield line;
}

export function formatReport(r: VerifyReport): string {
  const out: string[] = [];
  const files = r.chains.reduce((n, c) => n + c.files, 0);
  const records = r.chains.reduce((n, c) => n + c.records, 0);
  out.push(`${r.dir}: ${r.chains.length} chain${r.chains.length === 1 ? '' : 's'}, ${files} file${files === 1 ? '' : 's'}, ${records} records checked`);
  for (const c of r.chains) {
    if (!c.problem) out.push(`  ${c.chain}: OK (${c.files} files, ${c.records} records)`);
    else
      out.push(
        `  ${c.chain}: BROKEN at ${c.problem.file} line ${c.problem.line}${c.problem.id ? ` (record ${c.problem.id})` : ''}: ${c.problem.reason}` +
          ` (${c.records} records before it are intact)`,
      );
  }
  if (r.unchained.length > 0) out.push(`  ${r.unchained.length} version-1 file(s) without a chain were not checked: ${r.unchained.join(', ')}`);
  if (r.lost.length > 0) {
    out.push(`  LOST: ${r.lost.length} answered request(s) have no record (the gateway did not stop cleanly):`);
    for (const l of r.lost.slice(0, 20)) out.push(`    ${l.id}${l.lane ? ` (lane ${l.lane})` : ''}, from the ${l.source}`);
    if (r.lost.length > 20) out.push(`    ... and ${r.lost.length - 20} more`);
  }
  if (r.liveIntents > 0) out.push(`  note: a gateway is running on this folder; requests it answered whose records are still on their way were not compared`);
  const broken = r.chains.some((c) => c.problem);
  out.push(
    r.ok
      ? 'OK: every chain is intact'
      : broken
        ? 'FAILED: see the first bad record of each broken chain above'
        : 'FAILED: every chain is intact, but answered requests have no record (LOST above)',
  );
  return out.join('\n');
}
