// What the benchmark needs before it starts anything: a fresh dist/, the
// bench's own scripts as plain JavaScript, and the gateway's config.
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import ts from 'typescript';
import { parse, stringify } from 'yaml';

/** The development key of the shipped config/gateway.yaml. */
export const DEV_KEY = 'lg-dev-key-change-me';

/** A non-negative number from the environment (BENCH_*), or the default. */
export function envNumber(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < 0) throw new Error(`${name} must be a non-negative number, got "${raw}"`);
  return value;
}

/** What every benchmark reads from the environment: run lengths and the CPU layout. */
export function baseSettings(): { durationS: number; warmupS: number; targetCpu: number; loadCpu: number } {
  return {
    durationS: envNumber('BENCH_DURATION', 10),
    warmupS: envNumber('BENCH_WARMUP', 3),
    targetCpu: envNumber('BENCH_TARGET_CPU', 0),
    loadCpu: envNumber('BENCH_LOAD_CPU', 1),
  };
}

export const ROOT = new URL('..', import.meta.url).pathname.replace(/\/$/, '');
export const BENCH_DIR = join(ROOT, 'bench');
export const RESULTS_DIR = join(BENCH_DIR, 'results');

function newestMtimeMs(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (entry.isFile()) newest = Math.max(newest, statSync(join(entry.parentPath, entry.name)).mtimeMs);
  }
  return newest;
}

/** Runs `npm run build` when dist/cli.js is missing or older than any source file. */
export function buildIfStale(): void {
  const cli = join(ROOT, 'dist', 'cli.js');
  const sources = Math.max(newestMtimeMs(join(ROOT, 'src')), statSync(join(ROOT, 'tsconfig.json')).mtimeMs);
  if (existsSync(cli) && statSync(cli).mtimeMs >= sources) return;
  console.log('bench: dist/ is missing or stale, running `npm run build`');
  try {
    execFileSync('npm', ['run', 'build'], { cwd: ROOT, stdio: 'inherit' });
  } catch {
    // tsc emits even when it reports errors: date the output back so the next
    // run builds again instead of benchmarking a half-built dist/.
    if (existsSync(cli)) utimesSync(cli, 0, 0);
    throw new Error('`npm run build` failed (see above); fix the build and run the bench again');
  }
}

/**
 * How the gateway runs as shipped: the Node flags and environment of the
 * Dockerfile's runtime stage (its CMD and ENV), which `npm start` repeats for
 * the flags. The bench runs the gateway with them; the bare proxy runs as
 * plain `node`. PORT and GATEWAY_CONFIG are left out: the bench sets both.
 */
export function shippedRuntime(root = ROOT): { flags: string[]; env: Record<string, string> } {
  const dockerfile = readFileSync(join(root, 'Dockerfile'), 'utf8').replace(/\\\n\s*/g, ' ');
  const runtime = dockerfile.split(/^FROM\s/m).at(-1) ?? '';
  const cmd = [...runtime.matchAll(/^CMD\s+(\[.*\])\s*$/gm)].at(-1)?.[1];
  const words = cmd ? (JSON.parse(cmd) as string[]) : [];
  const to = words.findIndex((w) => w.endsWith('lanegate.mjs'));
  if (words[0] !== 'node' || to < 0) throw new Error(`the Dockerfile's CMD is not ["node", flags..., "bin/lanegate.mjs", ...]: ${cmd}`);
  const env: Record<string, string> = {};
  for (const line of runtime.matchAll(/^ENV\s+(.*)$/gm)) {
    for (const pair of line[1]!.matchAll(/(\w+)=(\S+)/g)) {
      if (pair[1] !== 'PORT' && pair[1] !== 'GATEWAY_CONFIG') env[pair[1]!] = pair[2]!;
    }
  }
  return { flags: words.slice(1, to), env };
}

/**
 * An earlier version of the gateway to measure beside this one
 * (BENCH_BASELINE=<git revision>): that revision's tree, extracted with
 * `git archive` (so nothing in this checkout changes), built with this
 * checkout's TypeScript against this checkout's node_modules, and run with its
 * own shipped config and Dockerfile flags. Returns its root folder.
 */
export function prepareBaseline(revision: string, tmp: string): string {
  const root = join(tmp, 'baseline');
  mkdirSync(root, { recursive: true });
  const sha = execFileSync('git', ['rev-parse', '--verify', `${revision}^{commit}`], { cwd: ROOT, encoding: 'utf8' }).trim();
  const tar = execFileSync('git', ['archive', '--format=tar', sha], { cwd: ROOT, maxBuffer: 512 * 1024 * 1024 });
  execFileSync('tar', ['-x', '-C', root], { input: tar });
  symlinkSync(join(ROOT, 'node_modules'), join(root, 'node_modules'));
  console.log(`bench: building the baseline ${revision} (${sha.slice(0, 12)}) in ${root}`);
  try {
    execFileSync(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(root, 'tsconfig.json')], { cwd: root, stdio: 'inherit' });
  } catch {
    // tsc emits even when it reports errors (a dependency newer than the
    // baseline knew, say): what it built is still that revision's code.
    if (!existsSync(join(root, 'dist', 'cli.js'))) throw new Error(`the baseline ${revision} did not build`);
    console.log('bench: the baseline built with type errors (see above); measuring what tsc emitted');
  }
  // What scripts/build.mjs copies beside the compiled code: the console's static files (the gateway reads them at start).
  const statics = join(root, 'src', 'console', 'static');
  if (existsSync(statics)) cpSync(statics, join(root, 'dist', 'console', 'static'), { recursive: true });
  return root;
}

/**
 * `startServer` arguments and environment for the gateway as shipped, on this
 * config. BENCH_GATEWAY_FLAGS adds Node flags for a look inside, e.g.
 * "--cpu-prof --cpu-prof-dir=/tmp/prof" (a profile per gateway, written when it stops).
 */
export function shippedGateway(configFile: string, root = ROOT): { args: string[]; env: Record<string, string> } {
  const { flags, env } = shippedRuntime(root);
  const extra = (process.env.BENCH_GATEWAY_FLAGS ?? '').split(/\s+/).filter(Boolean);
  return { args: [...flags, ...extra, join(root, 'dist', 'cli.js'), 'serve', '--config', configFile], env };
}

const CHILD_SCRIPTS = ['fake-upstream', 'bare-proxy', 'constant-rate', 'stream-probe', 'percentiles', 'mcp-server'] as const;
export type ChildScript = (typeof CHILD_SCRIPTS)[number];

/**
 * Transpiles the scripts the bench runs as child processes to plain .js, so
 * they start under bare `node`: the tsx loader would add its own thread and
 * memory to the bare proxy and skew the comparison. The output lives under
 * bench/results/ so that `undici` still resolves from the project.
 */
export function compileChildScripts(): (script: ChildScript) => string {
  const outDir = join(RESULTS_DIR, '.build');
  mkdirSync(outDir, { recursive: true });
  for (const script of CHILD_SCRIPTS) {
    const source = readFileSync(join(BENCH_DIR, `${script}.ts`), 'utf8');
    const { outputText } = ts.transpileModule(source, {
      compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
      fileName: `${script}.ts`,
    });
    writeFileSync(join(outDir, `${script}.js`), outputText);
  }
  return (script) => join(outDir, `${script}.js`);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

// Token counters add each request's worst case (prompt plus the longest answer
// allowed), so their ceiling must sit far above requests x max output tokens.
const UNREACHABLE = 1_000_000_000_000_000;

/**
 * Keeps the shipped budgets and rate limits (so the gateway still prices,
 * reserves and counts every request) but lifts their ceilings out of the
 * load's reach: a refused request would measure the refusal path instead.
 */
function liftLimits(config: Record<string, unknown>, pricing: Record<string, unknown>): void {
  // Priced like the shipped cheap model, so budget accounting has a real cost to add up.
  const cheapest = Object.values(pricing).find(isRecord) ?? { input: 0.15, output: 0.6 };
  config.pricing = { ...pricing, 'bench-upstream': cheapest };
  if (Array.isArray(config.rate_limits)) {
    config.rate_limits = config.rate_limits.map((rule: unknown) =>
      isRecord(rule) ? { ...rule, ...lifted(rule, ['requests_per_minute', 'tokens_per_minute'], UNREACHABLE) } : rule,
    );
  }
  const budgets = config.budgets;
  if (isRecord(budgets) && Array.isArray(budgets.rules)) {
    const rules = budgets.rules.map((rule: unknown) =>
      isRecord(rule) ? { ...rule, ...lifted(rule, ['usd'], 1_000_000), ...lifted(rule, ['tokens', 'requests'], UNREACHABLE) } : rule,
    );
    config.budgets = { ...budgets, rules };
  }
  if (Array.isArray(config.run_limits)) {
    config.run_limits = config.run_limits.map((rule: unknown) => (isRecord(rule) ? { ...rule, ...lifted(rule, ['max_concurrent'], 100_000) } : rule));
  }
}

function lifted(rule: Record<string, unknown>, keys: string[], ceiling: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (const key of keys) if (typeof rule[key] === 'number') out[key] = ceiling;
  return out;
}

export interface BenchUpstreams {
  fastUrl: string;
  slowUrl: string;
}

/**
 * The shipped config/gateway.yaml plus what the bench needs: providers for
 * the two fake upstreams and the models `bench` and `bench-slow` on them, the
 * audit trail in a temporary directory and the server on 127.0.0.1 on a free
 * port. Everything else (auth and keys, lanes and policies, routes, cache,
 * budgets and rate limits with their ceilings lifted, logging with the access
 * log, metrics, the audit sink) stays as shipped, so the gateway does the work
 * it does by default.
 */
export function writeGatewayConfig(dir: string, upstreams: BenchUpstreams, root = ROOT, fileName?: string): string {
  const shippedFile = join(root, 'config', 'gateway.yaml');
  const shipped: unknown = parse(readFileSync(shippedFile, 'utf8'));
  if (!isRecord(shipped)) throw new Error('config/gateway.yaml is not a YAML mapping');
  const section = (key: string): Record<string, unknown> => {
    const value = shipped[key];
    return isRecord(value) ? value : {};
  };
  const provider = (url: string) => ({ type: 'openai', base_url: `${url}/v1`, api_key: 'sk-bench-upstream' });
  const config: Record<string, unknown> = {
    ...shipped,
    server: { ...section('server'), host: '127.0.0.1', port: 0 },
    providers: { ...section('providers'), bench_upstream: provider(upstreams.fastUrl), bench_slow_upstream: provider(upstreams.slowUrl) },
    models: {
      ...section('models'),
      bench: { description: 'The fast fake upstream.', deployments: [{ provider: 'bench_upstream', model: 'bench-upstream' }] },
      'bench-slow': { description: 'The paced fake upstream.', deployments: [{ provider: 'bench_slow_upstream', model: 'bench-upstream' }] },
    },
    audit: { ...section('audit'), dir: join(dir, 'audit') },
  };
  liftLimits(config, section('pricing'));
  // Paths the shipped file gives relative to itself must survive the move.
  const policies = section('policies');
  if (typeof policies.dir === 'string') config.policies = { ...policies, dir: resolve(dirname(shippedFile), policies.dir) };
  const prompts = section('prompts');
  if (Object.keys(prompts).length > 0) {
    const fixed: Record<string, unknown> = { ...prompts };
    for (const key of ['dir', 'tools_dir', 'evals_dir', 'pins_file']) if (typeof prompts[key] === 'string') fixed[key] = resolve(dirname(shippedFile), prompts[key]);
    config.prompts = fixed;
  }
  const file = join(dir, fileName ?? (root === ROOT ? 'gateway.bench.yaml' : 'gateway.baseline.yaml'));
  writeFileSync(file, `# Generated by bench/run.ts from config/gateway.yaml.\n${stringify(config)}`);
  return file;
}

export interface Verdict {
  target: string;
  met: boolean;
  detail: string;
}

/**
 * The end of a standalone benchmark: each target's verdict and the
 * anomalies, printed, and the run's results written to bench/results/<file>
 * with the machine they were measured on.
 */
export function finishRun(file: string, targets: Verdict[], anomalies: string[], results: Record<string, unknown>): void {
  for (const t of targets) console.log(`${t.met ? 'MET    ' : 'NOT MET'}  ${t.target}: ${t.detail}`);
  for (const a of anomalies) console.log(`anomaly: ${a}`);
  mkdirSync(RESULTS_DIR, { recursive: true });
  const machine = { generatedAt: new Date().toISOString(), node: process.version, cpu: cpus()[0]?.model };
  writeFileSync(join(RESULTS_DIR, file), JSON.stringify({ ...machine, ...results, targets, anomalies }, null, 2));
}

/** Runs a benchmark's main and exits: 0 when it finished, 1 with its error otherwise. */
export function runBench(main: () => Promise<void>): void {
  main().then(
    () => process.exit(0),
    (err: unknown) => {
      console.error(`bench: ${err instanceof Error ? err.message : String(err)}`);
      process.exit(1);
    },
  );
}
