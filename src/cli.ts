// The command line: a thin layer over the same modules the server uses.
import { AUDIT_USAGE, auditCommand, waitReady } from './audit/cli.js';
import { hashKey } from './auth/keys.js';
import { BATCHES_USAGE, batchesCommand } from './batches/cli.js';
import { compileConfig } from './config/compile.js';
import { ConfigError, loadConfig, resolveConfigPath } from './config/load.js';
import { serveCommand } from './main.js';
import { userErrorLine } from './cli-errors.js';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { ledgerSource, toCsv, usageReport } from './budget/ledger.js';
import { isUsageGroup, parseUsageBound, USAGE_GROUPS } from './budget/usage-query.js';
import { GatewayError } from './errors.js';
import { EVAL_USAGE, evalCommand } from './evals/cli.js';
import { promoteCommand, PROMPTS_USAGE, rollbackCommand, shadowReportCommand } from './prompts/cli.js';
import { BUDGETS_USAGE, budgetsCommand } from './budget/cli.js';
import { explainRequest, explainToolCall } from './policy/explain.js';
import { createHttpClients } from './providers/http.js';
import { createCommandRedis, createServices } from './services.js';

const SERVE_USAGE = `  serve [--config PATH]          start the gateway (default command)`;
const CHECK_CONFIG_USAGE = `  check-config [--config PATH]   validate the config without serving; lists every problem`;
const HASH_KEY_USAGE = `  hash-key <key>                 print the sha256 to put in a key's config entry`;
const COSTS_USAGE = `  costs [--from DATE] [--to DATE] [--by team|app|key|model|provider|lane] [--csv] [--config PATH]
                                 spend from the usage ledger (the audit trail). Dates are
                                 UTC days or ISO 8601 times; --to includes the day it names
                                 (default: the last 30 days up to now)`;
const EXPLAIN_USAGE = `  explain --key-id ID --request FILE [--header name:value]... [--embeddings] [--config PATH]
  explain --key-id ID --tool SERVER__TOOL [--args JSON|FILE] [--lane LANE] [--config PATH]
                                 show which lane a request lands in, what the policies
                                 would do with it and which deployments remain,
                                 without calling any provider`;

const USAGE = `Usage: lanegate <command> [options]

Commands:
${SERVE_USAGE}
${CHECK_CONFIG_USAGE}
${HASH_KEY_USAGE}
${COSTS_USAGE}
${EXPLAIN_USAGE}
${BUDGETS_USAGE}
  audit verify [--dir DIR]       check the audit trail's hash chains (first bad record per chain)
  audit purge --before DATE      remove audit records written before DATE; the purge is recorded
  audit list [--team T] [--lane L] [--status 5xx] ... [--limit N] [--after CURSOR]
                                 audit records by the filters of GET /admin/audit, one JSON line each
  audit show ID                  one audit record, as GET /admin/audit/{id} returns it
${BATCHES_USAGE}
${EVAL_USAGE}
${PROMPTS_USAGE}

The config path defaults to $GATEWAY_CONFIG or config/gateway.yaml.`;

async function checkConfig(argv: string[]): Promise<number> {
  const file = resolveConfigPath(argv, process.env);
  try {
    const loaded = await loadConfig(file);
    const clients = createHttpClients();
    const compiled = compileConfig(loaded.config, loaded.file, clients, loaded.policies, loaded.prompts);
    await clients.close();
    console.log(`${file}: OK`);
    console.log(`  models: ${[...compiled.models.keys()].join(', ') || '(none enabled)'}`);
    for (const [name, providers] of compiled.unavailableModels) console.log(`  model ${name}: no enabled provider (${providers.join(', ')} need credentials)`);
    console.log(`  keys: ${loaded.config.keys.length}, auth: ${compiled.auth.mode}`);
    for (const [name, pin] of compiled.prompts.pins) {
      const canary = pin.base.canary ? `, canary ${pin.base.canary.version} at ${pin.base.canary.weight * 100}%` : '';
      console.log(`  prompt ${name}: ${pin.base.live}${canary} (versions: ${[...(compiled.prompts.templates.get(name)?.keys() ?? [])].join(', ')})`);
    }
    return 0;
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(err.message);
      return 1;
    }
    throw err;
  }
}

/** The tool-call form of explain: what the MCP gateway would do with one call. */
async function explainTool(argv: string[], keyId: string, tool: string): Promise<number> {
  const raw = flagValues(argv, '--args')[0] ?? '{}';
  let args: unknown;
  try {
    // Inline JSON, or a file holding it.
    args = JSON.parse(raw.trimStart().startsWith('{') ? raw : await readFile(raw, 'utf8'));
  } catch (err) {
    console.error(`--args must be a JSON object or a file holding one: ${(err as Error).message}`);
    return 2;
  }
  if (!args || typeof args !== 'object' || Array.isArray(args)) {
    console.error('--args must be a JSON object, such as {"path": "src/a.ts"}.');
    return 2;
  }
  const clients = createHttpClients();
  try {
    const loaded = await loadConfig(resolveConfigPath(argv, process.env));
    const config = compileConfig(loaded.config, loaded.file, clients, loaded.policies, loaded.prompts);
    const result = explainToolCall(config, { keyId, tool, args: args as Record<string, unknown>, lane: flagValues(argv, '--lane')[0] });
    console.log(JSON.stringify(result, null, 2));
    return 0;
  } catch (err) {
    if (err instanceof ConfigError || err instanceof GatewayError) {
      console.error(err.message);
      return err instanceof ConfigError ? 1 : 2;
    }
    throw err;
  } finally {
    await clients.close();
  }
}

function flagValues(argv: string[], flag: string): string[] {
  const out: string[] = [];
  argv.forEach((a, i) => {
    if (a === flag && argv[i + 1] !== undefined) out.push(argv[i + 1]!);
  });
  return out;
}

async function explain(argv: string[]): Promise<number> {
  const keyId = flagValues(argv, '--key-id')[0];
  const requestFile = flagValues(argv, '--request')[0];
  const tool = flagValues(argv, '--tool')[0];
  if (keyId && tool) return explainTool(argv, keyId, tool);
  if (!keyId || !requestFile) {
    console.error('Usage: lanegate explain --key-id ID --request FILE [--header name:value]... [--embeddings]');
    console.error('       lanegate explain --key-id ID --tool SERVER__TOOL [--args JSON|FILE] [--lane LANE]');
    return 2;
  }
  const headers: Record<string, string> = {};
  for (const h of flagValues(argv, '--header')) {
    const at = h.indexOf(':');
    if (at > 0) headers[h.slice(0, at).trim().toLowerCase()] = h.slice(at + 1).trim();
  }
  let body: unknown;
  try {
    body = JSON.parse(await readFile(requestFile, 'utf8'));
  } catch (err) {
    console.error(`Cannot read ${requestFile} as JSON: ${(err as Error).message}`);
    return 2;
  }
  const clients = createHttpClients();
  try {
    const loaded = await loadConfig(resolveConfigPath(argv, process.env));
    const config = compileConfig(loaded.config, loaded.file, clients, loaded.policies, loaded.prompts);
    const result = await explainRequest(config, createServices({ config: () => config }), { keyId, endpoint: argv.includes('--embeddings') ? 'embeddings' : 'chat', headers, body });
    console.log(JSON.stringify(result, null, 2));
    return 0;
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(err.message);
      return 1;
    }
    if (err instanceof GatewayError) {
      console.error(err.message);
      return 2;
    }
    throw err;
  } finally {
    await clients.close();
  }
}

async function costs(argv: string[]): Promise<number> {
  const by = flagValues(argv, '--by')[0] ?? 'team';
  if (!isUsageGroup(by)) {
    console.error(`--by must be one of ${USAGE_GROUPS.join(', ')} (got "${by}").`);
    return 2;
  }
  const now = Date.now();
  const from = flagValues(argv, '--from')[0];
  const to = flagValues(argv, '--to')[0];
  const fromMs = from ? parseUsageBound(from, { end: false }) : now - 30 * 86_400_000;
  const toMs = to ? parseUsageBound(to, { end: true }) : now + 1;
  if (Number.isNaN(fromMs) || Number.isNaN(toMs)) {
    console.error('--from and --to take dates such as 2026-11-01');
    return 2;
  }
  const loaded = await loadConfig(resolveConfigPath(argv, process.env));
  const audit = { ...loaded.config.audit, dir: path.resolve(loaded.config.audit.dir) };
  // With the Redis sink the ledger is every replica's records in Redis, not this machine's folder.
  const redis = audit.sink === 'redis' ? createCommandRedis(loaded.config.redis) : undefined;
  let report;
  try {
    if (redis && !(await waitReady(redis.ping))) {
      console.error('Redis is not reachable, and the usage ledger is there (audit.sink: redis).');
      return 1;
    }
    report = await usageReport(ledgerSource(audit, redis), fromMs, toMs, by);
  } finally {
    await redis?.close();
  }
  if (argv.includes('--csv')) {
    process.stdout.write(toCsv(report, by));
    return 0;
  }
  const rows = [...report.rows, report.total];
  const width = Math.max(by.length, ...rows.map((r) => r.group.length));
  // Cache hits' tokens are saved, not used: their own column, as the metrics count them apart.
  console.log(`${by.padEnd(width)}  ${'requests'.padStart(9)}  ${'input tok'.padStart(12)}  ${'output tok'.padStart(12)}  ${'USD'.padStart(14)}  ${'saved tok'.padStart(12)}`);
  for (const r of rows) {
    const saved = r.saved_input_tokens + r.saved_output_tokens;
    console.log(`${r.group.padEnd(width)}  ${String(r.requests).padStart(9)}  ${String(r.input_tokens).padStart(12)}  ${String(r.output_tokens).padStart(12)}  ${r.usd.padStart(14)}  ${String(saved).padStart(12)}`);
  }
  const bad = report.integrity;
  if (bad.mismatched > 0) console.log(`EXCLUDED: ${bad.mismatched} record(s) fail their hash check (changed after they were written), claiming ${bad.claimed_usd} USD: ${bad.ids.join(', ')}`);
  return 0;
}

// `lanegate <command> --help` prints that command's usage and runs nothing:
// `costs --help` must not read the ledger, nor `serve --help` start a server.
const COMMAND_USAGE: Record<string, string> = {
  serve: SERVE_USAGE,
  'check-config': CHECK_CONFIG_USAGE,
  'hash-key': HASH_KEY_USAGE,
  costs: COSTS_USAGE,
  explain: EXPLAIN_USAGE,
  budgets: BUDGETS_USAGE,
  audit: AUDIT_USAGE,
  eval: EVAL_USAGE,
  promote: PROMPTS_USAGE,
  rollback: PROMPTS_USAGE,
  'shadow-report': PROMPTS_USAGE,
};

export async function runCli(argv: string[]): Promise<number | undefined> {
  const [command = 'serve', ...rest] = argv;
  const usage = Object.hasOwn(COMMAND_USAGE, command) ? COMMAND_USAGE[command] : undefined;
  if (usage !== undefined && (rest.includes('--help') || rest.includes('-h'))) {
    const text = usage.startsWith('Usage:') ? usage : `Usage: lanegate ${command} [options]\n\n${usage}`;
    console.log(`${text}\n\nThe config path defaults to $GATEWAY_CONFIG or config/gateway.yaml.`);
    return 0;
  }
  switch (command) {
    case 'serve':
      await serveCommand(rest);
      return undefined;
    case 'check-config':
      return checkConfig(rest);
    case 'hash-key': {
      const key = rest[0];
      if (!key) {
        console.error('Usage: lanegate hash-key <key>');
        return 2;
      }
      console.log(hashKey(key));
      return 0;
    }
    case 'costs':
      return costs(rest);
    case 'explain':
      return explain(rest);
    case 'budgets':
      return budgetsCommand(rest);
    case 'audit':
      return auditCommand(rest);
    case 'batches':
      return batchesCommand(rest);
    case 'eval':
      return evalCommand(rest);
    case 'promote':
      return promoteCommand(rest);
    case 'rollback':
      return rollbackCommand(rest);
    case 'shadow-report':
      return shadowReportCommand(rest);
    case 'help':
    case '--help':
    case '-h':
      console.log(USAGE);
      return 0;
    default:
      if (command.startsWith('--')) {
        await serveCommand(argv);
        return undefined;
      }
      console.error(`Unknown command "${command}".\n\n${USAGE}`);
      return 2;
  }
}

// A reader that stops early (`lanegate costs | head -1`) closes the pipe: one
// line says so instead of an unhandled 'error' event's stack.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code !== 'EPIPE') throw err;
  process.stderr.write('lanegate: output closed before the command finished (broken pipe)\n');
  process.exit(1);
});

try {
  const code = await runCli(process.argv.slice(2));
  if (code !== undefined) process.exitCode = code;
} catch (err) {
  const line = userErrorLine(err);
  if (line === undefined) throw err;
  // exit, not exitCode: a half-started gateway's sockets and timers must not keep the process up.
  console.error(line);
  process.exit(1);
}
