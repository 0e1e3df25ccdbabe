// Reads config/gateway.yaml, fills in ${ENV} references, validates it and
// reports every problem at once, each naming the file, the path and what was
// expected.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parseDocument } from 'yaml';
import type { z } from 'zod';
import { validTimeZone } from '../budget/periods.js';
import { formatIssuePath } from '../errors.js';
import { sha256Hex as hashText } from '../sha256.js';
import { checkPolicies, loadPolicies, openPolicySet, type PolicySet } from '../policy/load.js';
import type { PromptCatalog } from '../prompts/catalog.js';
import { loadPromptCatalog } from '../prompts/load.js';
import { gatewayConfigSchema, type GatewayConfig } from './schema.js';

export interface ConfigProblem {
  file: string;
  path: string;
  message: string;
}

export class ConfigError extends Error {
  readonly problems: ConfigProblem[];
  constructor(problems: ConfigProblem[]) {
    const only = problems.length === 1 && !problems[0]!.path ? problems[0] : undefined;
    super(
      only
        ? `Invalid configuration: ${only.file}: ${only.message}`
        : `Invalid configuration (${problems.length} problem${problems.length === 1 ? '' : 's'}):\n` +
            problems.map((p) => `  ${p.file}: ${p.path || '(root)'}: ${p.message}`).join('\n'),
    );
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

export interface LoadedConfig {
  file: string;
  dir: string;
  config: GatewayConfig;
  policies: PolicySet;
  /** Prompt templates, tool schemas, eval sets and pins (empty without prompts.dir). */
  prompts: PromptCatalog;
}

export function resolveConfigPath(argv: string[], env: NodeJS.ProcessEnv): string {
  const i = argv.indexOf('--config');
  const fromArg = i >= 0 ? argv[i + 1] : undefined;
  return path.resolve(fromArg ?? env.GATEWAY_CONFIG ?? 'config/gateway.yaml');
}

export async function loadConfig(file: string, env: NodeJS.ProcessEnv = process.env): Promise<LoadedConfig> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new ConfigError([{ file, path: '', message: unreadableConfig(err as NodeJS.ErrnoException, env) }]);
  }
  // Every problem in one run: schema problems do not hide the policy, lane and
  // tool checks, which run on what of the config could be read.
  const { config, problems } = checkGatewayConfig(text, file, env);
  if (!config) throw new ConfigError(problems);
  const dir = path.dirname(file);
  let policies = openPolicySet();
  if (config.policies.dir) {
    const before = problems.length;
    policies = await loadPolicies(path.resolve(dir, config.policies.dir), problems);
    if (problems.length === before) checkPolicies(policies, config, file, problems);
  } else {
    config.keys.forEach((key, i) => {
      if (key.lane || key.lanes) problems.push({ file, path: `keys[${i}].lane`, message: 'lanes need policies: set policies.dir' });
    });
  }
  const prompts = await loadPromptCatalog(config, dir, file, problems);
  if (problems.length > 0) throw new ConfigError(problems);
  return { file, dir, config, policies, prompts };
}

function unreadableConfig(err: NodeJS.ErrnoException, env: NodeJS.ProcessEnv): string {
  if (err.code !== 'ENOENT') return `cannot read file: ${err.code ?? String(err)}`;
  // In the Docker image (LANEGATE_CONFIG_MOUNT in the Dockerfile) the fix is a mount, not a flag.
  const mount = env.LANEGATE_CONFIG_MOUNT;
  if (mount) return `no such file: mount your config folder at ${mount} (docker run -v "$PWD/config:${mount}:ro" ...) or set GATEWAY_CONFIG`;
  return 'no such file: pass --config PATH or set GATEWAY_CONFIG';
}

export function parseGatewayConfig(text: string, file: string, env: NodeJS.ProcessEnv): GatewayConfig {
  const { config, problems } = checkGatewayConfig(text, file, env);
  if (!config || problems.length > 0) throw new ConfigError(problems);
  return config;
}

/**
 * The config's problems, all of them, and the config itself when enough of it
 * could be read to check it further: with schema problems, the parts that
 * fail are set aside (salvageConfig) so the cross-checks still run on the rest.
 */
export function checkGatewayConfig(text: string, file: string, env: NodeJS.ProcessEnv): { config?: GatewayConfig; problems: ConfigProblem[] } {
  const doc = parseDocument(text, { prettyErrors: true });
  if (doc.errors.length > 0) {
    return { problems: doc.errors.map((e) => ({ file, path: '', message: `YAML syntax: ${yamlErrorText(e.message)}` })) };
  }
  const problems: ConfigProblem[] = [];
  const raw = interpolateEnv(doc.toJS(), env, '', (p, message) => problems.push({ file, path: p, message }));
  const parsed = gatewayConfigSchema.safeParse(raw);
  if (parsed.success) {
    const config = parsed.data as GatewayConfig;
    problems.push(...crossCheck(file, config));
    return { config, problems };
  }
  problems.push(...zodProblems(file, parsed.error));
  const salvaged = salvageConfig(raw);
  if (salvaged) problems.push(...crossCheck(file, salvaged.config).filter((p) => !salvaged.hides(p)));
  return { config: salvaged?.config, problems };
}

// yaml's pretty message is "what, at line L, column C:\n\n<the line>\n<caret>";
// the line and its caret are what show the operator where to look.
function yamlErrorText(message: string): string {
  const [first = '', ...context] = message.replace(/\n+$/, '').split('\n');
  const shown = context.filter((l) => l.trim() !== '');
  return shown.length > 0 ? `${first}\n${shown.map((l) => `      | ${l}`).join('\n')}` : first;
}

type Segment = string | number;

/**
 * The config with every part the schema refused taken out (defaults fill in
 * for settings; entries that cannot stand without the part go whole), and a
 * filter for cross-check problems that only the taking out caused.
 */
function salvageConfig(raw: unknown): { config: GatewayConfig; hides(problem: ConfigProblem): boolean } | undefined {
  if (!raw || typeof raw !== 'object') return undefined;
  let value: unknown = structuredClone(raw);
  const removed: Segment[][] = [];
  for (let round = 0; round < 25; round++) {
    const parsed = gatewayConfigSchema.safeParse(value);
    if (parsed.success) {
      const names = removed.filter((p) => p.length === 2 && typeof p[1] === 'string').map((p) => `"${String(p[1])}"`);
      const lists = removed.filter((p) => p.length >= 2 && typeof p[1] === 'number').map((p) => `${String(p[0])}[`);
      return {
        config: parsed.data as GatewayConfig,
        hides: (problem) => names.some((n) => problem.message.includes(n)) || lists.some((l) => problem.path.startsWith(l)),
      };
    }
    const marked = new Set<string>();
    for (const issue of parsed.error.issues) {
      const at = issue.path.filter((s): s is Segment => typeof s !== 'symbol');
      const target = issue.code === 'unrecognized_keys' ? issue.keys.map((k) => [...at, k]) : [at];
      for (const p of target) {
        const existing = lookup(value, p) === undefined ? p.slice(0, -1) : p;
        if (existing.length === 0 || marked.has(JSON.stringify(existing))) continue;
        marked.add(JSON.stringify(existing));
        removed.push(existing);
      }
    }
    if (marked.size === 0) return undefined;
    value = withoutPaths(value, [...marked].map((m) => JSON.parse(m) as Segment[]));
  }
  return undefined;
}

function lookup(value: unknown, at: readonly Segment[]): unknown {
  let v = value;
  for (const s of at) {
    if (!v || typeof v !== 'object') return undefined;
    v = (v as Record<string | number, unknown>)[s];
  }
  return v;
}

// Array elements are taken out after all paths are resolved, so one removal
// does not shift the index another path names.
const GONE = Symbol('gone');
function withoutPaths(value: unknown, paths: Segment[][]): unknown {
  for (const at of paths) {
    const parent = lookup(value, at.slice(0, -1));
    const last = at.at(-1)!;
    if (Array.isArray(parent) && typeof last === 'number') parent[last] = GONE;
    else if (parent && typeof parent === 'object') delete (parent as Record<string, unknown>)[String(last)];
  }
  const sweep = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.filter((x) => x !== GONE).map(sweep);
    if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, sweep(x)]));
    return v;
  };
  return sweep(value);
}

export function zodProblems(file: string, error: z.ZodError): ConfigProblem[] {
  return error.issues.map((issue) => ({ file, path: formatIssuePath(issue.path), message: issue.message }));
}

const ENV_REF = /\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

// Interpolation runs on parsed string values, not on the YAML text, so an
// environment value can never inject YAML structure.
function interpolateEnv(
  value: unknown,
  env: NodeJS.ProcessEnv,
  at: string,
  report: (path: string, message: string) => void,
): unknown {
  if (typeof value === 'string') {
    if (!value.includes('${')) return value;
    return value.replace(ENV_REF, (_m, varName: string, fallback: string | undefined) => {
      const v = env[varName];
      if (v !== undefined && v !== '') return v;
      if (fallback !== undefined) return fallback;
      report(at, `environment variable ${varName} is not set (write \${${varName}:-} to make it optional)`);
      return '';
    });
  }
  if (Array.isArray(value)) return value.map((v, i) => interpolateEnv(v, env, `${at}[${i}]`, report));
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = interpolateEnv(v, env, at ? `${at}.${k}` : k, report);
    return out;
  }
  return value;
}

function crossCheck(file: string, config: GatewayConfig): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const add = (p: string, message: string) => problems.push({ file, path: p, message });

  for (const [modelName, model] of Object.entries(config.models)) {
    model.deployments.forEach((d, i) => {
      const provider = config.providers[d.provider];
      if (!provider) {
        add(`models.${modelName}.deployments[${i}].provider`, `unknown provider "${d.provider}" (defined: ${Object.keys(config.providers).join(', ')})`);
      } else if (model.type === 'embedding' && provider.type === 'anthropic') {
        add(`models.${modelName}.deployments[${i}].provider`, 'anthropic has no embeddings API; use an openai or mock provider');
      }
    });
  }
  for (const [modelName, model] of Object.entries(config.models)) {
    model.fallbacks.forEach((f, i) => {
      const target = config.models[f];
      if (!target) add(`models.${modelName}.fallbacks[${i}]`, `unknown model "${f}"`);
      else if (f === modelName) add(`models.${modelName}.fallbacks[${i}]`, 'a model cannot fall back to itself');
      else if (target.type !== model.type) add(`models.${modelName}.fallbacks[${i}]`, `"${f}" is a ${target.type} model, "${modelName}" a ${model.type} model`);
    });
    if (model.degrade) {
      const target = config.models[model.degrade.model];
      if (!target) add(`models.${modelName}.degrade.model`, `unknown model "${model.degrade.model}"`);
      else if (target.type !== 'chat' || model.type !== 'chat') add(`models.${modelName}.degrade.model`, 'degraded mode applies to chat models only');
    }
  }
  for (const [routeName, route] of Object.entries(config.routes)) {
    if (config.models[routeName]) add(`routes.${routeName}`, `"${routeName}" is also a model name; a route needs a name of its own`);
    const names = new Set<string>();
    route.rules.forEach((rule, i) => {
      const at = `routes.${routeName}.rules[${i}]`;
      if (names.has(rule.name)) add(`${at}.name`, `duplicate rule name "${rule.name}"`);
      names.add(rule.name);
      const target = config.models[rule.model];
      if (!target) add(`${at}.model`, `unknown model "${rule.model}" (a rule must name a model under models:)`);
      else if (target.type !== 'chat') add(`${at}.model`, `"${rule.model}" is not a chat model`);
      if (rule.default && rule.match) add(`${at}.match`, 'the default rule matches everything; remove its match');
      if (!rule.default && !rule.match) add(`${at}`, 'a rule needs a match, or default: true');
      if (rule.default && i !== route.rules.length - 1) add(`${at}.default`, 'the default rule must be the last one (rules after it could never match)');
      const m = rule.match;
      if (m?.min_prompt_tokens !== undefined && m.max_prompt_tokens !== undefined && m.min_prompt_tokens > m.max_prompt_tokens) {
        add(`${at}.match`, 'min_prompt_tokens is greater than max_prompt_tokens: the rule can never match');
      }
    });
    if (!route.rules.at(-1)?.default) add(`routes.${routeName}.rules`, 'a route needs a final rule with default: true');
  }
  if (!validTimeZone(config.budgets.timezone)) add('budgets.timezone', `unknown time zone "${config.budgets.timezone}" (use an IANA name such as "Europe/Berlin")`);
  const known = {
    key: new Set(config.keys.map((k) => k.id)),
    app: new Set(config.keys.map((k) => k.app)),
    team: new Set(config.keys.map((k) => k.team)),
  };
  const checkMatch = (at: string, scope: string, match: string[] | undefined) =>
    match?.forEach((m, i) => {
      const set = known[scope as keyof typeof known];
      if (set && !set.has(m)) add(`${at}.match[${i}]`, `no key has ${scope} "${m}"`);
    });
  const budgetNames = new Set<string>();
  config.budgets.rules.forEach((b, i) => {
    if (budgetNames.has(b.name)) add(`budgets.rules[${i}].name`, `duplicate budget name "${b.name}"`);
    budgetNames.add(b.name);
    checkMatch(`budgets.rules[${i}]`, b.scope, b.match);
  });
  config.rate_limits.forEach((r, i) => {
    if (budgetNames.has(r.name)) add(`rate_limits[${i}].name`, `"${r.name}" is also a budget name`);
    checkMatch(`rate_limits[${i}]`, r.scope, r.match);
  });
  config.run_limits.forEach((l, i) => {
    l.keys?.forEach((k, j) => {
      if (!known.key.has(k)) add(`run_limits[${i}].keys[${j}]`, `unknown key id "${k}"`);
    });
    l.routes?.forEach((r, j) => {
      if (!config.models[r] && !config.routes[r]) add(`run_limits[${i}].routes[${j}]`, `unknown model or route "${r}"`);
    });
  });
  for (const [providerName, provider] of Object.entries(config.providers)) {
    if (provider.type === 'openai' && provider.api_style === 'azure' && !provider.api_version) {
      add(`providers.${providerName}.api_version`, 'Azure-style providers need an api_version, e.g. "2024-10-21"');
    }
  }

  const ids = new Set<string>();
  const hashes = new Set<string>();
  config.keys.forEach((key, i) => {
    if (ids.has(key.id)) add(`keys[${i}].id`, `duplicate key id "${key.id}"`);
    if (hashes.has(key.sha256)) add(`keys[${i}].sha256`, 'the same key hash appears twice');
    if (key.sha256 === config.auth.admin_key_sha256) add(`keys[${i}].sha256`, 'an app key must not also be the admin key');
    ids.add(key.id);
    hashes.add(key.sha256);
    key.models.forEach((m, j) => {
      if (m !== '*' && !config.models[m] && !config.routes[m]) add(`keys[${i}].models[${j}]`, `unknown model or route "${m}"`);
    });
  });
  const people = new Set<string>();
  config.people.forEach((p, i) => {
    const digest = p.sha256 ?? hashText(p.key ?? '');
    if (people.has(p.name)) add(`people[${i}].name`, `duplicate person name "${p.name}"`);
    if (hashes.has(digest)) add(`people[${i}]`, 'a person key must not also be an app key, another person\'s or the admin key');
    people.add(p.name);
    hashes.add(digest);
  });
  if (config.auth.admin_key_sha256 && config.people.some((p) => (p.sha256 ?? hashText(p.key ?? '')) === config.auth.admin_key_sha256)) {
    add('people', 'a person key must not also be the admin key');
  }
  if (config.auth.mode === 'keys' && config.keys.length === 0) {
    add('keys', 'auth.mode is "keys" but no keys are defined (add one, or set auth.mode: none for local development)');
  }
  // A misspelt id would leave that deployment on the defaults with nothing said.
  const deploymentIds = new Set(Object.values(config.models).flatMap((m) => m.deployments.map((d) => `${d.provider}/${d.model}`)));
  for (const id of Object.keys(config.admission.deployments)) {
    if (!deploymentIds.has(id)) add(`admission.deployments.${id}`, `no model has the deployment "${id}" (deployments are <provider>/<model>: ${[...deploymentIds].join(', ')})`);
  }
  if (config.audit.sink === 'redis' && !config.redis.url) {
    add('audit.sink', 'the redis audit sink needs redis.url (or use sink: file)');
  }
  return problems;
}
