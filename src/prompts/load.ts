// Reads the prompt artifacts named by `prompts:` in the gateway config:
//
//   <dir>/<name>/<version>.yaml        templates
//   <dir>/pins.yaml                    which version each app gets
//   <tools_dir>/<name>/<version>.json  tool schemas
//   <evals_dir>/<name>/<version>.yaml eval sets (or .jsonl)
//
// Everything is validated together, and against the gateway config (models,
// routes, apps): every problem is reported at once with its file and path,
// and a catalog with any problem is never half-loaded.
import { readdirSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { parseDocument } from 'yaml';
import { chatRequestSchema, type ToolDefinition } from '../api/schemas.js';
import type { ConfigProblem } from '../config/load.js';
import type { GatewayConfig } from '../config/schema.js';
import type { WatchTarget } from '../config/watch.js';
import { formatIssuePath } from '../errors.js';
import { parseEvalSet, type EvalSet } from '../evals/load.js';
import { emptyCatalog, type CompiledMessage, type CompiledPin, type CompiledTemplate, type PromptCatalog, type Split } from './catalog.js';
import { ARTIFACT_NAME, pinsFileSchema, RESERVED_PARAMETERS, templateFileSchema, toolFileSchema, VERSION, type AppPinConfig, type PinsFile, type ToolFile } from './schema.js';
import { constantText, parseTemplate } from './template.js';
import { checkValue, compileVariable, declarationProblems, type CompiledVariable } from './variables.js';
import { sha256Hex } from '../sha256.js';

type Problems = ConfigProblem[];

export interface PromptPaths {
  dir: string;
  toolsDir: string;
  evalsDir: string;
  pinsFile: string;
}

export function promptPaths(config: GatewayConfig, configDir: string): PromptPaths | undefined {
  const p = config.prompts;
  if (!p.dir) return undefined;
  const dir = path.resolve(configDir, p.dir);
  return {
    dir,
    toolsDir: path.resolve(configDir, p.tools_dir ?? path.join(p.dir, '..', 'tools')),
    evalsDir: path.resolve(configDir, p.evals_dir ?? path.join(p.dir, '..', 'evals')),
    pinsFile: path.resolve(configDir, p.pins_file ?? path.join(p.dir, 'pins.yaml')),
  };
}

/**
 * The folders to watch for hot reload: each artifact root and each of its
 * per-name sub-folders, one level each. (Node 20's recursive watching on
 * Linux stops reporting a file once it has been replaced by a rename, which
 * is how editors and `lanegate promote` save.) A sub-folder created after
 * start-up makes the root change, so it is loaded; edits inside it are seen
 * after a restart, or with SIGHUP / POST /admin/reload.
 */
export function promptWatchTargets(catalog: PromptCatalog): WatchTarget[] {
  if (!catalog.enabled) return [];
  const artifact = (name: string) => /\.(ya?ml|json|jsonl)$/.test(name);
  const dirs = new Set<string>([path.dirname(catalog.pinsFile)]);
  for (const root of [catalog.dir, catalog.toolsDir, catalog.evalsDir]) {
    dirs.add(root);
    try {
      for (const e of readdirSync(root, { withFileTypes: true })) if (e.isDirectory()) dirs.add(path.join(root, e.name));
    } catch {
      // A missing folder has nothing to watch.
    }
  }
  // Roots also report new sub-folders (any name).
  const roots = new Set([catalog.dir, catalog.toolsDir, catalog.evalsDir]);
  return [...dirs].map((dir) => ({ dir, matches: roots.has(dir) ? () => true : artifact }));
}

async function listDir(dir: string): Promise<Array<{ name: string; isDir: boolean }> | undefined> {
  try {
    return (await readdir(dir, { withFileTypes: true })).map((e) => ({ name: e.name, isDir: e.isDirectory() })).sort((a, b) => (a.name < b.name ? -1 : 1));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** Files `<root>/<name>/<version><ext>`, by name and version. */
async function listArtifacts(root: string, exts: readonly string[], problems: Problems, what: string, ignore?: (file: string) => boolean): Promise<Array<{ name: string; version: string; file: string }>> {
  const out: Array<{ name: string; version: string; file: string }> = [];
  const entries = await listDir(root);
  if (!entries) return out;
  for (const e of entries) {
    const full = path.join(root, e.name);
    if (!e.isDir) {
      if (ignore?.(full) || !exts.some((x) => e.name.endsWith(x))) continue;
      problems.push({ file: full, path: '', message: `${what} go in ${root}/<name>/<version>${exts[0]}, not directly in the folder` });
      continue;
    }
    if (!ARTIFACT_NAME.test(e.name)) {
      problems.push({ file: full, path: '', message: `"${e.name}" is not a valid name (letters, digits, "_" or "-", up to 64)` });
      continue;
    }
    for (const f of (await listDir(full)) ?? []) {
      const ext = exts.find((x) => f.name.endsWith(x));
      if (f.isDir || !ext) continue;
      const version = f.name.slice(0, -ext.length);
      const file = path.join(full, f.name);
      if (!VERSION.test(version)) {
        problems.push({ file, path: '', message: `"${version}" is not a valid version (such as v12: letters, digits, ".", "_" or "-")` });
        continue;
      }
      if (out.some((o) => o.name === e.name && o.version === version)) {
        problems.push({ file, path: '', message: `version ${version} of ${e.name} exists twice (with different extensions)` });
        continue;
      }
      out.push({ name: e.name, version, file });
    }
  }
  return out;
}

function nested<T>(map: Map<string, Map<string, T>>, name: string): Map<string, T> {
  let inner = map.get(name);
  if (!inner) map.set(name, (inner = new Map()));
  return inner;
}

export async function loadPromptCatalog(config: GatewayConfig, configDir: string, configFile: string, problems: Problems): Promise<PromptCatalog> {
  const paths = promptPaths(config, configDir);
  if (!paths) return emptyCatalog(config.prompts);
  const before = problems.length;
  if (!(await listDir(paths.dir))) {
    problems.push({ file: configFile, path: 'prompts.dir', message: `the prompts folder ${paths.dir} does not exist` });
    return emptyCatalog(config.prompts);
  }

  const tools = new Map<string, Map<string, ToolFile>>();
  for (const { name, version, file } of await listArtifacts(paths.toolsDir, ['.json'], problems, 'tool schemas')) {
    let json: unknown;
    try {
      json = JSON.parse(await readFile(file, 'utf8'));
    } catch (err) {
      problems.push({ file, path: '', message: `not valid JSON: ${(err as Error).message}` });
      continue;
    }
    const parsed = toolFileSchema.safeParse(json);
    if (!parsed.success) {
      for (const issue of parsed.error.issues) problems.push({ file, path: formatIssuePath(issue.path), message: issue.message });
      continue;
    }
    if (parsed.data.name !== name) {
      problems.push({ file, path: 'name', message: `the tool in ${name}/ must be named "${name}", not "${parsed.data.name}"` });
      continue;
    }
    nested(tools, name).set(version, parsed.data);
  }

  const templates = new Map<string, Map<string, CompiledTemplate>>();
  const isPins = (file: string) => file === paths.pinsFile;
  for (const { name, version, file } of await listArtifacts(paths.dir, ['.yaml', '.yml'], problems, 'templates', isPins)) {
    const t = compileTemplateFile(await readFile(file, 'utf8'), { name, version, file }, { config, tools }, problems);
    if (t) nested(templates, name).set(version, t);
  }

  const evals = new Map<string, Map<string, EvalSet>>();
  const knownModel = (m: string) => config.models[m]?.type === 'chat' || config.routes[m] !== undefined;
  for (const { name, version, file } of await listArtifacts(paths.evalsDir, ['.yaml', '.yml', '.jsonl'], problems, 'eval sets')) {
    const set = parseEvalSet(await readFile(file, 'utf8'), file, name, version, problems, knownModel);
    if (!set) continue;
    if (!templates.has(set.prompt)) problems.push({ file, path: 'line 1: eval_set.prompt', message: `no prompt template named "${set.prompt}" in ${paths.dir}` });
    nested(evals, name).set(version, set);
  }

  const pins = await loadPins(paths.pinsFile, config.prompts.pins_file !== undefined, { config, templates, evals }, problems);

  if (problems.length > before) return emptyCatalog(config.prompts);
  return {
    enabled: true,
    ...paths,
    reportsDir: config.prompts.reports_dir,
    shadow: config.prompts.shadow,
    templates,
    tools,
    evals,
    pins,
  };
}

interface TemplateContext {
  config: GatewayConfig;
  tools: ReadonlyMap<string, ReadonlyMap<string, ToolFile>>;
}

/** Validates and compiles one template file; undefined (and problems) when it is invalid. */
export function compileTemplateFile(text: string, at: { name: string; version: string; file: string }, ctx: TemplateContext, problems: Problems): CompiledTemplate | undefined {
  const { file } = at;
  const before = problems.length;
  const add = (p: string, message: string) => problems.push({ file, path: p, message });
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    for (const e of doc.errors) add('', `YAML syntax: ${e.message.split('\n')[0]}`);
    return undefined;
  }
  const parsed = templateFileSchema.safeParse(doc.toJS() ?? {});
  if (!parsed.success) {
    for (const issue of parsed.error.issues) add(formatIssuePath(issue.path), issue.message);
    return undefined;
  }
  const t = parsed.data;

  const variables = new Map<string, CompiledVariable>();
  for (const [name, decl] of Object.entries(t.variables)) {
    for (const [field, message] of declarationProblems(decl)) add(`variables.${name}.${field}`, message);
    const v = compileVariable(name, decl);
    variables.set(name, v);
    for (const field of ['default', 'example'] as const) {
      if (v[field] === undefined) continue;
      const wrong = checkValue(v, v[field]);
      if (wrong) add(`variables.${name}.${field}`, `the ${field} ${wrong}`);
    }
  }

  const messages: CompiledMessage[] = [];
  t.messages.forEach((m, i) => {
    const parsedText = parseTemplate(m.content);
    for (const p of parsedText.problems) add(`messages[${i}].content`, `at character ${p.at}: ${p.message}`);
    for (const name of parsedText.scalars) {
      const v = variables.get(name);
      if (!v) add(`messages[${i}].content`, `{{${name}}} is not a declared variable (declare it under variables:)`);
      else if (v.type === 'array') add(`messages[${i}].content`, `{{${name}}} is an array; insert its items with {{#${name}}}...{{.}}...{{/${name}}}`);
    }
    for (const name of parsedText.sections) {
      const v = variables.get(name);
      if (!v) add(`messages[${i}].content`, `{{#${name}}} is not a declared variable (declare it under variables: with type: array)`);
      else if (v.type !== 'array') add(`messages[${i}].content`, `{{#${name}}} is a section, which iterates arrays only; "${name}" is a ${v.type} (use {{${name}}})`);
    }
    messages.push({ role: m.role, name: m.name, segments: parsedText.segments, constant: constantText(parsedText.segments) });
  });

  const model = ctx.config.models[t.model];
  if (!model && !ctx.config.routes[t.model]) add('model', `unknown model or route "${t.model}" (defined: ${[...Object.keys(ctx.config.models), ...Object.keys(ctx.config.routes)].join(', ')})`);
  else if (model && model.type !== 'chat') add('model', `"${t.model}" is an ${model.type} model; templates need a chat model`);

  const toolDefs: ToolDefinition[] = [];
  const toolNames = new Set<string>();
  t.tools.forEach((ref, i) => {
    const [toolName, toolVersion] = ref.split('@') as [string, string];
    const tool = ctx.tools.get(toolName)?.get(toolVersion);
    if (!tool) {
      const known = ctx.tools.get(toolName);
      add(`tools[${i}]`, known ? `tool ${toolName} has no version ${toolVersion} (versions: ${[...known.keys()].join(', ')})` : `no tool schema ${toolName}/${toolVersion}.json in the tools folder`);
      return;
    }
    if (toolNames.has(toolName)) add(`tools[${i}]`, `tool ${toolName} is offered twice`);
    toolNames.add(toolName);
    toolDefs.push({ type: 'function', function: { ...tool } });
  });

  for (const key of Object.keys(t.parameters)) {
    if ((RESERVED_PARAMETERS as readonly string[]).includes(key)) add(`parameters.${key}`, `"${key}" cannot be a template parameter (it is ${key === 'tools' ? 'the tools: section' : key === 'model' ? 'the model: field' : key === 'messages' ? 'the messages: section' : "the app's or the gateway's to set"})`);
  }
  // The parameters must make a valid request: check them with the API's own schema.
  const probe = chatRequestSchema.safeParse({ ...t.parameters, model: t.model, messages: [{ role: 'user', content: 'x' }], ...(toolDefs.length > 0 ? { tools: toolDefs } : {}) });
  if (!probe.success) for (const issue of probe.error.issues) add(`parameters.${formatIssuePath(issue.path)}`, issue.message);
  const choice = t.parameters.tool_choice;
  if (choice !== undefined && toolDefs.length === 0 && choice !== 'none') add('parameters.tool_choice', 'tool_choice needs tools: the template offers none');

  if (problems.length > before) return undefined;
  const fields: Record<string, unknown> = { ...t.parameters };
  if (toolDefs.length > 0) fields.tools = toolDefs;
  return {
    name: at.name,
    version: at.version,
    file,
    sha256: sha256Hex(text),
    description: t.description,
    metadata: t.metadata,
    model: t.model,
    parameters: t.parameters,
    fieldsJson: JSON.stringify(fields),
    toolRefs: t.tools,
    tools: toolDefs,
    variables,
    messages,
    acceptsMessages: t.accepts_messages,
  };
}

interface PinsContext {
  config: GatewayConfig;
  templates: ReadonlyMap<string, ReadonlyMap<string, CompiledTemplate>>;
  evals: ReadonlyMap<string, ReadonlyMap<string, EvalSet>>;
}

export async function loadPins(file: string, explicit: boolean, ctx: PinsContext, problems: Problems): Promise<Map<string, CompiledPin>> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    // No pins file is a catalog nobody can call yet (evals and the admin API still work).
    if (code === 'ENOENT' && !explicit) return new Map();
    problems.push({ file, path: '', message: `cannot read the pins file: ${code ?? String(err)}` });
    return new Map();
  }
  return compilePins(text, file, ctx, problems);
}

export function parsePinsText(text: string, file: string, problems: Problems): PinsFile | undefined {
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    for (const e of doc.errors) problems.push({ file, path: '', message: `YAML syntax: ${e.message.split('\n')[0]}` });
    return undefined;
  }
  const parsed = pinsFileSchema.safeParse(doc.toJS() ?? {});
  if (!parsed.success) {
    for (const issue of parsed.error.issues) problems.push({ file, path: formatIssuePath(issue.path), message: issue.message });
    return undefined;
  }
  return parsed.data;
}

/** Validates pins against the templates and the config's apps; the same check runs before promote and rollback write. */
export function compilePins(text: string, file: string, ctx: PinsContext, problems: Problems): Map<string, CompiledPin> {
  const before = problems.length;
  const pins = new Map<string, CompiledPin>();
  const data = parsePinsText(text, file, problems);
  if (!data) return pins;
  const apps = new Set([...ctx.config.keys.map((k) => k.app), ctx.config.auth.anonymous.app]);
  for (const [name, entry] of Object.entries(data)) {
    const versions = ctx.templates.get(name);
    if (!versions) {
      problems.push({ file, path: name, message: `no prompt template named "${name}" (templates: ${[...ctx.templates.keys()].join(', ') || 'none'})` });
      continue;
    }
    const checkVersion = (at: string, v: string) => {
      if (!versions.has(v)) problems.push({ file, path: at, message: `${name} has no version ${v} (versions: ${[...versions.keys()].join(', ')})` });
    };
    const e = typeof entry === 'string' ? { live: entry, exact_versions: false as const, history: [], apps: {}, canary: undefined, shadow: undefined, sample: undefined, eval_set: undefined } : entry;
    const base: Split = {
      live: e.live,
      canary: e.canary,
      shadow: typeof e.shadow === 'string' ? { version: e.shadow, sample: e.sample! } : e.shadow,
      exact: typeof e.exact_versions === 'boolean' ? e.exact_versions : new Set(e.exact_versions),
    };
    const checkSplit = (at: string, s: Split, liveAt = `${at}live`) => {
      checkVersion(liveAt, s.live);
      if (s.canary) {
        checkVersion(`${at}canary.version`, s.canary.version);
        if (s.canary.version === s.live) problems.push({ file, path: `${at}canary.version`, message: `the canary is the live version ${s.live}; remove the canary or pin another version` });
      }
      if (s.shadow) {
        checkVersion(`${at}shadow`, s.shadow.version);
        if (s.shadow.version === s.live) problems.push({ file, path: `${at}shadow`, message: `the shadow is the live version ${s.live}; a shadow runs another version beside it` });
      }
      if (s.exact !== true && s.exact !== false) for (const v of s.exact) checkVersion(`${at}exact_versions`, v);
    };
    checkSplit(`${name}.`, base, typeof entry === 'string' ? name : `${name}.live`);
    e.history.forEach((v, i) => checkVersion(`${name}.history[${i}]`, v));
    if (e.eval_set && !ctx.evals.get(name)?.has(e.eval_set)) problems.push({ file, path: `${name}.eval_set`, message: `no eval set ${name}/${e.eval_set} (.yaml or .jsonl)` });

    const appSplits = new Map<string, Split>();
    for (const [app, pin] of Object.entries(e.apps)) {
      if (!apps.has(app)) problems.push({ file, path: `${name}.apps.${app}`, message: `no key has app "${app}"` });
      const split = appSplit(pin, base);
      checkSplit(`${name}.apps.${app}.`, split, typeof pin === 'string' ? `${name}.apps.${app}` : `${name}.apps.${app}.live`);
      appSplits.set(app, split);
    }
    pins.set(name, { name, base, apps: appSplits, history: e.history, evalSet: e.eval_set });
  }
  if (problems.length > before) return new Map();
  return pins;
}

/** An app's own pin: a version alone pins exactly that (no canary, no shadow); exact_versions is inherited unless set. */
function appSplit(pin: AppPinConfig, base: Split): Split {
  if (typeof pin === 'string') return { live: pin, canary: undefined, shadow: undefined, exact: base.exact };
  return {
    live: pin.live,
    canary: pin.canary,
    shadow: pin.shadow,
    exact: pin.exact_versions === undefined ? base.exact : typeof pin.exact_versions === 'boolean' ? pin.exact_versions : new Set(pin.exact_versions),
  };
}
