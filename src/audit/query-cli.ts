// `lanegate audit list` and `lanegate audit show`: the admin API's audit
// reads (GET /admin/audit, GET /admin/audit/{id}) from the command line,
// with the same filters (read/filter.ts), the same bodies cut to each lane's
// current handling and the same integrity marks, read straight from the
// sink's folder or streams so they work with no gateway running.
import { ConfigError, loadConfig, resolveConfigPath } from '../config/load.js';
import { GatewayError } from '../errors.js';
import { compilePolicies, type CompiledPolicies } from '../policy/compile.js';
import { createCommandRedis } from '../services.js';
import type { RedisStore } from '../stores/redis.js';
import { waitReady } from './cli.js';
import { parseAuditFilter } from './read/filter.js';
import { integrityCounts } from './read/integrity.js';
import { createFileQuery, restrictBodies, type AuditQuery } from './read/query.js';
import { createRedisQuery } from './read/redis-query.js';

export const AUDIT_QUERY_USAGE = `  lanegate audit list [--from T] [--to T] [--team T] [--app A] [--lane L] [--model M]
                      [--status 429|5xx] [--kind K] [--limit N] [--order oldest|newest] [--after CURSOR]
                      [--dir DIR] [--config PATH]
      the records that pass every filter, in time order, one JSON line each (the
      filters of GET /admin/audit; --lane _gateway finds the records no lane holds);
      a further page's cursor is printed to stderr as "next: --after CURSOR"
  lanegate audit show ID [--dir DIR] [--config PATH]
      one record by request id, as GET /admin/audit/{id} returns it`;

function flag(argv: string[], name: string): string | undefined {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : undefined;
}

interface Source {
  query: AuditQuery;
  /** Unknown without a config: every record then shows hashes only, as for a removed lane. */
  lanes?: CompiledPolicies['lanes'];
  close(): Promise<void>;
}

async function openSource(argv: string[]): Promise<Source | number> {
  const dir = flag(argv, '--dir');
  let loaded;
  try {
    loaded = await loadConfig(resolveConfigPath(argv, process.env));
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    if (!dir) {
      console.error(`${err.message}\n(or name the audit folder with --dir)`);
      return 1;
    }
  }
  const lanes = loaded ? compilePolicies(loaded.policies).lanes : undefined;
  if (dir || loaded?.config.audit.sink === 'file') {
    return { query: createFileQuery({ dir: dir ?? loaded!.config.audit.dir }), lanes, close: async () => {} };
  }
  if (!loaded || loaded.config.audit.sink === 'off') {
    console.error('The audit trail is off in this config (audit.sink: off); name a folder with --dir.');
    return 2;
  }
  const redis: RedisStore = createCommandRedis(loaded.config.redis);
  if (!(await waitReady(redis.ping))) {
    await redis.close();
    console.error('Redis is not reachable; no records were read.');
    return 1;
  }
  return { query: createRedisQuery(redis), lanes, close: () => redis.close() };
}

export async function auditQueryCommand(sub: 'list' | 'show', argv: string[]): Promise<number> {
  let filter;
  try {
    filter = sub === 'list' ? parseAuditFilter((name) => flag(argv, `--${name}`)) : undefined;
  } catch (err) {
    if (err instanceof GatewayError) {
      console.error(`--${err.param}: ${err.message}`);
      return 2;
    }
    throw err;
  }
  const id = argv[0];
  if (sub === 'show' && (!id || id.startsWith('--'))) {
    console.error(`audit show needs a request id.\n\n${AUDIT_QUERY_USAGE}`);
    return 2;
  }
  const source = await openSource(argv);
  if (typeof source === 'number') return source;
  const visible = (record: Record<string, unknown>) => {
    const lane = (record.lane as { name?: string } | null | undefined)?.name;
    return restrictBodies(record, lane ? source.lanes?.get(lane)?.audit.bodies : undefined);
  };
  try {
    if (sub === 'show') {
      const record = await source.query.get(id!);
      if (!record) {
        console.error(`No audit record with id ${id} (it may have expired under its lane's retention).`);
        return 1;
      }
      console.log(JSON.stringify(visible(record)));
      return 0;
    }
    const page = await source.query.list(filter!);
    for (const record of page.data) console.log(JSON.stringify(visible(record)));
    const counts = integrityCounts(page.data);
    if (counts.mismatched > 0) console.error(`integrity: ${counts.mismatched} record(s) do not match their hash`);
    if (page.next) console.error(`next: --after ${page.next}`);
    return 0;
  } finally {
    await source.close();
  }
}
