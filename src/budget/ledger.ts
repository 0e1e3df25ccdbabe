// The usage ledger is the audit trail: every answered request's record holds
// its cost. From it the gateway rebuilds budget counters after the store lost
// its data, and finance gets usage reports whose totals equal the sum of the
// records, to the nano-dollar. It is read where the audit sink writes (the
// JSONL folder, or the Redis streams of several replicas), through the
// trail's reader (audit/read/reader.ts).
import { createFileReader } from '../audit/read/file-reader.js';
import type { AuditReader } from '../audit/read/reader.js';
import { createRedisReader } from '../audit/read/redis-reader.js';
import type { Integrity } from '../audit/read/integrity.js';
import type { RedisStore } from '../stores/redis.js';
import type { CompiledLimits } from './compile.js';
import { periodId, type Period } from './periods.js';
import type { Amount, BudgetStore, SeedOptions } from './store.js';

export interface LedgerEntry {
  /** The request id. */
  id: string;
  /** What the record's hash says of it: a `mismatch` was changed after it was written (audit/read/integrity.ts). */
  integrity: Integrity;
  time: number;
  key: string;
  app: string;
  team: string;
  /** The model that answered (a route's choice, not the route's name), as lanegate_spend_usd_total labels it. */
  model: string;
  provider: string;
  lane: string;
  /** The client's user-agent family (api/client-family.ts), as lanegate_client_requests_total labels it; '' in records written before it was kept. */
  client: string;
  nanoUsd: number;
  /** Tokens used upstream: none for a cache hit, whose tokens are `saved*` instead (as the metrics count them). */
  inputTokens: number;
  outputTokens: number;
  tokens: number;
  cacheHit: boolean;
  savedInputTokens: number;
  savedOutputTokens: number;
}

interface RawRecord {
  id?: string;
  kind?: string;
  time?: string;
  key_id?: string;
  app?: string;
  team?: string;
  model?: string;
  route?: { model?: string } | null;
  provider?: string;
  client?: string;
  lane?: { name?: string } | string | null;
  cache?: { status?: string } | null;
  usage?: { prompt_tokens?: number; completion_tokens?: number; total_tokens?: number } | null;
  cost?: { nano_usd?: number; usd?: number } | null;
}

/** Where the records are: the file sink's folder, or the Redis sink's streams. */
export type LedgerSource = AuditReader;

/**
 * The ledger of the configured audit sink. With `sink: off` (or no Redis to
 * read) it is the folder, which holds whatever an earlier file sink wrote.
 */
export function ledgerSource(audit: { sink: string; dir: string }, redis: RedisStore | undefined): LedgerSource {
  return audit.sink === 'redis' && redis ? createRedisReader(redis) : folderLedger(audit.dir);
}

/** The ledger in a folder: its subfolders too (an export with one per replica), and files of version 1. */
export function folderLedger(dir: string): LedgerSource {
  return createFileReader(dir, { files: 'all' });
}

/** Every request record with a cost in the source, within [from, to). */
export async function* readLedger(source: LedgerSource, from = 0, to = Infinity): AsyncGenerator<LedgerEntry> {
  for await (const s of source.records({ from, to, kinds: ['request'], holding: '"cost"', skipBodies: true })) {
    const r = s.record as RawRecord;
    if (!r.cost) continue;
    const nano = typeof r.cost.nano_usd === 'number' ? r.cost.nano_usd : Math.round((r.cost.usd ?? 0) * 1e9);
    const hit = r.cache?.status === 'hit';
    const input = r.usage?.prompt_tokens ?? 0;
    const output = r.usage?.completion_tokens ?? 0;
    yield {
      id: r.id ?? '',
      // The whole line is hashed (bodies too): linear in what is read, like the read itself.
      integrity: s.integrity().integrity,
      time: s.time,
      key: r.key_id ?? '',
      app: r.app ?? '',
      team: r.team ?? '',
      model: r.route?.model ?? r.model ?? '',
      provider: r.provider ?? '',
      lane: typeof r.lane === 'string' ? r.lane : (r.lane?.name ?? ''),
      client: r.client ?? '',
      nanoUsd: nano,
      inputTokens: hit ? 0 : input,
      outputTokens: hit ? 0 : output,
      tokens: hit ? 0 : (r.usage?.total_tokens ?? 0),
      cacheHit: hit,
      savedInputTokens: hit ? input : 0,
      savedOutputTokens: hit ? output : 0,
    };
  }
}

export interface LedgerTotal {
  /** The folder, or `redis streams`. */
  source: string;
  /** Request records with a cost in the current day or month. */
  records: number;
  nanoUsd: number;
}

export interface RebuildResult {
  counters: number;
  /** Per source: what it held for the current periods, so an operator can see each replica's share. */
  sources: LedgerTotal[];
}

export function describeSource(source: LedgerSource): string {
  return source.source;
}

/**
 * Recomputes this period's budget counters from the ledgers (every replica's
 * share: their spend adds up) and writes them to the store.
 */
export async function rebuildCounters(
  store: BudgetStore,
  limits: CompiledLimits,
  ledgers: readonly LedgerSource[],
  options: { now?: number; seed?: SeedOptions } = {},
): Promise<RebuildResult> {
  const now = options.now ?? Date.now();
  const values = new Map<string, { id: string; spent: Amount; ttlMs: number }>();
  const from = now - 32 * 86_400_000;
  const periods: Period[] = ['day', 'month'];
  const sources: LedgerTotal[] = [];
  for (const ledger of ledgers) {
    const total: LedgerTotal = { source: describeSource(ledger), records: 0, nanoUsd: 0 };
    sources.push(total);
    for await (const e of readLedger(ledger, from, now + 1)) {
      // A cache hit is answered before the budgets are reserved: the live counters never hold it.
      if (e.cacheHit) continue;
      let current = false;
      for (const b of limits.budgets) {
        if (b.period === 'minute' || !periods.includes(b.period)) continue;
        if (periodId(b.period, e.time, limits.timezone) !== periodId(b.period, now, limits.timezone)) continue;
        current = true;
        const subject = b.scope === 'key' ? e.key : b.scope === 'app' ? e.app : b.scope === 'team' ? e.team : '*';
        if (b.match && !b.match.includes(subject)) continue;
        const id = `budget:${b.name}:${b.scope}:${encodeURIComponent(subject)}:${periodId(b.period, now, limits.timezone)}`;
        let v = values.get(id);
        if (!v) values.set(id, (v = { id, spent: { usd: 0, tokens: 0, requests: 0 }, ttlMs: (b.period === 'day' ? 3 : 62) * 86_400_000 }));
        v.spent.usd += e.nanoUsd;
        v.spent.tokens += e.tokens;
        v.spent.requests += 1;
      }
      if (current) {
        total.records++;
        total.nanoUsd += e.nanoUsd;
      }
    }
  }
  await store.seed([...values.values()], options.seed);
  return { counters: values.size, sources };
}

export type GroupBy = 'team' | 'app' | 'key' | 'model' | 'provider' | 'lane' | 'client';

export interface UsageRow {
  group: string;
  requests: number;
  input_tokens: number;
  output_tokens: number;
  /** Cache hits' tokens: answered without an upstream call, so neither used nor paid for. */
  saved_input_tokens: number;
  saved_output_tokens: number;
  nano_usd: number;
  usd: string;
}

/** Records left out of a usage report because their hash does not match: changed after they were written. */
export interface UsageIntegrity {
  mismatched: number;
  /** What the changed records claim, for finance to see beside the totals (never in them). */
  claimed_nano_usd: number;
  claimed_usd: string;
  /** Their request ids (the first 100). */
  ids: string[];
}

const MISMATCH_IDS = 100;

export async function usageReport(
  source: LedgerSource,
  from: number,
  to: number,
  by: GroupBy,
): Promise<{ rows: UsageRow[]; total: UsageRow; integrity: UsageIntegrity }> {
  const groups = new Map<string, UsageRow>();
  const total: UsageRow = { group: 'total', requests: 0, input_tokens: 0, output_tokens: 0, saved_input_tokens: 0, saved_output_tokens: 0, nano_usd: 0, usd: '' };
  const integrity: UsageIntegrity = { mismatched: 0, claimed_nano_usd: 0, claimed_usd: '', ids: [] };
  for await (const e of readLedger(source, from, to)) {
    if (e.integrity === 'mismatch') {
      // An edited cost is no figure to bill by: it stays out of the totals and is reported beside them.
      integrity.mismatched++;
      integrity.claimed_nano_usd += e.nanoUsd;
      if (integrity.ids.length < MISMATCH_IDS) integrity.ids.push(e.id);
      continue;
    }
    const name = e[by] || '(none)';
    let row = groups.get(name);
    if (!row) groups.set(name, (row = { group: name, requests: 0, input_tokens: 0, output_tokens: 0, saved_input_tokens: 0, saved_output_tokens: 0, nano_usd: 0, usd: '' }));
    for (const r of [row, total]) {
      r.requests++;
      r.input_tokens += e.inputTokens;
      r.output_tokens += e.outputTokens;
      r.saved_input_tokens += e.savedInputTokens;
      r.saved_output_tokens += e.savedOutputTokens;
      r.nano_usd += e.nanoUsd;
    }
  }
  const rows = [...groups.values()].sort((a, b) => b.nano_usd - a.nano_usd);
  for (const r of [...rows, total]) r.usd = (r.nano_usd / 1e9).toFixed(6);
  integrity.claimed_usd = (integrity.claimed_nano_usd / 1e9).toFixed(6);
  return { rows, total, integrity };
}

export function toCsv(report: { rows: UsageRow[]; total: UsageRow; integrity?: UsageIntegrity }, by: GroupBy): string {
  const esc = (v: string | number) => (typeof v === 'string' && /[",\n]/.test(v) ? `"${v.replaceAll('"', '""')}"` : String(v));
  const lines = [`${by},requests,input_tokens,output_tokens,usd,saved_input_tokens,saved_output_tokens`];
  for (const r of [...report.rows, report.total]) lines.push([r.group, r.requests, r.input_tokens, r.output_tokens, r.usd, r.saved_input_tokens, r.saved_output_tokens].map(esc).join(','));
  // After the total and named so it cannot be read as a group: what the changed records claim.
  const bad = report.integrity;
  if (bad && bad.mismatched > 0) lines.push(['EXCLUDED: records failing their hash check', bad.mismatched, '', '', bad.claimed_usd].map(esc).join(','));
  return lines.join('\n') + '\n';
}
