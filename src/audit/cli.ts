// `lanegate audit verify` and `lanegate audit purge`: thin commands over
// read/verify.ts and read/retention.ts (`list` and `show` are query-cli.ts).
import { ConfigError, loadConfig, resolveConfigPath } from '../config/load.js';
import { createRedisClient } from '../stores/redis.js';
import { createLogger } from '../telemetry/logger.js';
import { spoolDir, type AuditConfig } from './config.js';
import { AUDIT_QUERY_USAGE, auditQueryCommand } from './query-cli.js';
import { purge } from './read/retention.js';
import { spoolBacklog } from './transport/spool.js';
import { formatReport, verifyDir } from './read/verify.js';

export const AUDIT_USAGE = `Usage:
  lanegate audit verify [--dir DIR] [--config PATH]
      check every hash chain of the file sink's folder and that no answered
      request lost its record in a crash; prints the first bad record of each
      broken chain and each lost request, and exits 1 if there is one
  lanegate audit purge --before DATE [--dir DIR] [--config PATH]
      remove audit records written before DATE (YYYY-MM-DD, UTC midnight, or
      an ISO 8601 time; files go by whole UTC days), and record the purge
${AUDIT_QUERY_USAGE}`;

function flag(argv: string[], name: string): string | undefined {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : undefined;
}

async function auditConfig(argv: string[]): Promise<{ audit: AuditConfig; redis: { url: string; key_prefix: string } } | number> {
  try {
    const loaded = await loadConfig(resolveConfigPath(argv, process.env));
    return { audit: loaded.config.audit, redis: loaded.config.redis };
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(`${err.message}\n(or name the audit folder with --dir)`);
      return 1;
    }
    throw err;
  }
}

export async function auditCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === 'verify') return verify(rest);
  if (sub === 'purge') return purgeCommand(rest);
  if (sub === 'list' || sub === 'show') return auditQueryCommand(sub, rest);
  console.error(AUDIT_USAGE);
  return 2;
}

async function verify(argv: string[]): Promise<number> {
  let dir = flag(argv, '--dir');
  let spool: string | undefined;
  if (!dir) {
    const c = await auditConfig(argv);
    if (typeof c === 'number') return c;
    if (c.audit.sink !== 'file') {
      console.error(`verify checks the file sink's hash chains; this config writes to "${c.audit.sink}". Name a folder with --dir.`);
      return 2;
    }
    dir = c.audit.dir;
    spool = spoolDir(c.audit);
  }
  const report = await verifyDir(dir, { spoolDir: spool });
  console.log(formatReport(report));
  const backlog = await spoolBacklog(spool ?? `${dir.replace(/\/+$/, '')}-spool`);
  if (backlog.segments > 0) console.log(`note: ${backlog.bytes} bytes of records still wait in the spool (${backlog.segments} segments); they join the chains once sent`);
  return report.ok ? 0 : 1;
}

function parseBefore(raw: string | undefined): number | undefined {
  if (!raw) return undefined;
  const ms = /^\d{4}-\d{2}-\d{2}$/.test(raw) ? Date.parse(`${raw}T00:00:00Z`) : Date.parse(raw);
  return Number.isFinite(ms) ? ms : undefined;
}

async function purgeCommand(argv: string[]): Promise<number> {
  const before = parseBefore(flag(argv, '--before'));
  if (before === undefined) {
    console.error(`--before needs a date (YYYY-MM-DD) or an ISO 8601 time.\n\n${AUDIT_USAGE}`);
    return 2;
  }
  const logger = createLogger({ level: 'silent' });
  const dir = flag(argv, '--dir');
  let record;
  if (dir) {
    record = await purge({ sink: 'file', dir, logger }, { reason: 'manual', before, cutoff: () => Math.min(before, startOfToday()) });
  } else {
    const c = await auditConfig(argv);
    if (typeof c === 'number') return c;
    if (c.audit.sink === 'off') {
      console.error('The audit trail is off in this config (audit.sink: off); name a folder with --dir.');
      return 2;
    }
    if (c.audit.sink === 'file') {
      // Today's files are still being written: they are never purged by hand.
      record = await purge({ sink: 'file', dir: c.audit.dir, logger }, { reason: 'manual', before, cutoff: () => Math.min(before, startOfToday()) });
    } else {
      const redis = createRedisClient({ url: c.redis.url, keyPrefix: c.redis.key_prefix, logger });
      try {
        if (!(await waitReady(redis.ping))) {
          console.error('Redis is not reachable; nothing was purged.');
          return 1;
        }
        record = await purge({ sink: 'redis', dir: c.audit.dir, redis, logger }, { reason: 'manual', before, cutoff: () => before });
      } finally {
        await redis.close();
      }
    }
  }
  if (!record) {
    console.log(`Nothing to purge before ${new Date(before).toISOString()}.`);
    return 0;
  }
  for (const ch of record.chains) console.log(`${ch.chain}: ${ch.records} records removed${ch.files.length ? ` (${ch.files.length} files)` : ''}, through ${ch.through}`);
  console.log(`Recorded as purge ${record.id} in the _purges chain.`);
  return 0;
}

function startOfToday(): number {
  return Date.parse(`${new Date().toISOString().slice(0, 10)}T00:00:00Z`);
}

/** Pings until Redis answers, for up to 3 s: a CLI run connects from cold. */
export async function waitReady(ping: () => Promise<boolean>): Promise<boolean> {
  const deadline = Date.now() + 3000;
  while (Date.now() < deadline) {
    if (await ping()) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}
