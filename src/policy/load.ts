// Reads every policies/*.yaml, validates each against the schema and then all
// of them together against the gateway config: unknown lanes, detectors, tools
// or providers, overlapping rules and unsafe regexes are load errors, and a
// set with any error is never half-loaded.
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { parseDocument } from 'yaml';
import type { ConfigProblem } from '../config/load.js';
import type { GatewayConfig } from '../config/schema.js';
import { formatIssuePath } from '../errors.js';
import { BUILTIN_DETECTOR_NAMES, createRegexDetector, RegexDetectorError } from './detectors.js';
import { policyFileSchema, type LaneConfig, type PolicyFile } from './schema.js';
import { TOOL_NAME_RULE, toolKey, type ToolKey } from './tool-name.js';
import { serverOf } from '../mcp/names.js';

export interface PolicySet {
  dir: string;
  files: string[];
  defaultLane: string;
  detectors: PolicyFile['detectors'];
  tools: PolicyFile['tools'];
  /** Only catalogued tools exist; false for the open set, where any tool name goes. */
  toolsListed: boolean;
  lanes: Record<string, LaneConfig>;
  /** Which file defined each lane, for error messages. */
  laneFiles: Record<string, string>;
}

/** The permissive single lane used when no policies are configured. */
export const OPEN_LANE = 'default';

export function openPolicySet(): PolicySet {
  const lane: LaneConfig = {
    rank: 0,
    description: 'No policies configured: everything is allowed.',
    deployments: ['*'],
    cache: 'shared',
    audit: { bodies: 'full', retention_days: 90 },
    detectors: {},
    restore_redactions: false,
    tools: { allow: ['*'], deny: [], on_denied: 'reject', require_approval: [] },
    required_metadata: [],
  };
  return { dir: '', files: [], defaultLane: OPEN_LANE, detectors: {}, tools: {}, toolsListed: false, lanes: { [OPEN_LANE]: lane }, laneFiles: {} };
}

export async function loadPolicies(dir: string, problems: ConfigProblem[]): Promise<PolicySet> {
  let names: string[];
  try {
    names = (await readdir(dir)).filter((n) => n.endsWith('.yaml') || n.endsWith('.yml')).sort();
  } catch (err) {
    problems.push({ file: dir, path: '', message: `cannot read the policies folder: ${(err as NodeJS.ErrnoException).code ?? String(err)}` });
    return openPolicySet();
  }
  const set: PolicySet = { dir, files: [], defaultLane: '', detectors: {}, tools: {}, toolsListed: true, lanes: {}, laneFiles: {} };
  type Owner = Map<string, { name: string; file: string }>;
  const owner: Record<'detectors' | 'tools' | 'lanes', Owner> = { detectors: new Map(), tools: new Map(), lanes: new Map() };
  let defaultFrom = '';
  for (const n of names) {
    const file = path.join(dir, n);
    set.files.push(file);
    const doc = parseDocument(await readFile(file, 'utf8'), { prettyErrors: true, uniqueKeys: true });
    if (doc.errors.length > 0) {
      for (const e of doc.errors) problems.push({ file, path: '', message: `YAML syntax: ${e.message.split('\n')[0]}` });
      continue;
    }
    const parsed = policyFileSchema.safeParse(doc.toJS() ?? {});
    if (!parsed.success) {
      for (const issue of parsed.error.issues) problems.push({ file, path: formatIssuePath(issue.path), message: issue.message });
      continue;
    }
    const p = parsed.data;
    if (p.default_lane) {
      if (defaultFrom) problems.push({ file, path: 'default_lane', message: `default_lane is already set in ${defaultFrom}` });
      else {
        defaultFrom = file;
        set.defaultLane = p.default_lane;
      }
    }
    for (const [section, entries] of [
      ['detectors', p.detectors],
      ['tools', p.tools],
      ['lanes', p.lanes],
    ] as const) {
      for (const [key, value] of Object.entries(entries)) {
        // Two tools whose names fold together would be one tool to every rule.
        const id = section === 'tools' ? toolKey(key) : key;
        const first = owner[section].get(id);
        if (first) {
          const message =
            first.name === key
              ? `"${key}" is already defined in ${first.file}`
              : `"${key}" and "${first.name}" (${first.file}) are the same tool: ${TOOL_NAME_RULE}; keep one of them`;
          problems.push({ file, path: `${section}.${key}`, message });
          continue;
        }
        owner[section].set(id, { name: key, file });
        (set[section] as Record<string, unknown>)[key] = value;
        if (section === 'lanes') set.laneFiles[key] = file;
      }
    }
  }
  if (Object.keys(set.lanes).length === 0) {
    problems.push({ file: dir, path: '', message: 'no lanes are defined (remove policies.dir from the gateway config to run without policies)' });
    return openPolicySet();
  }
  return set;
}

/** Checks the policies against each other and against the gateway config. */
export function checkPolicies(set: PolicySet, config: GatewayConfig, configFile: string, problems: ConfigProblem[]): void {
  const add = (file: string, at: string, message: string) => problems.push({ file, path: at, message });
  const lanes = set.lanes;
  if (!set.defaultLane) add(set.dir, 'default_lane', 'one policy file must set default_lane');
  else if (!lanes[set.defaultLane]) add(set.dir, 'default_lane', `unknown lane "${set.defaultLane}"`);

  for (const [name, d] of Object.entries(set.detectors)) {
    if ((BUILTIN_DETECTOR_NAMES as readonly string[]).includes(name)) add(set.dir, `detectors.${name}`, `"${name}" is a built-in detector; choose another name`);
    try {
      createRegexDetector(name, d.pattern, d.flags);
    } catch (err) {
      add(set.dir, `detectors.${name}.pattern`, err instanceof RegexDetectorError ? err.message : String(err));
    }
  }

  const ranks = new Map<number, string>();
  const tools = new Set(Object.keys(set.tools).map(toolKey));
  // The tools of mcp_servers are catalogued by their server's tool list, under `<server>__<tool>` (src/mcp/names.ts).
  const mcpServers = new Set(Object.keys(config.mcp_servers));
  const catalogued = (key: ToolKey) => tools.has(key) || mcpServers.has(serverOf(key) ?? '');
  for (const [name, lane] of Object.entries(lanes)) {
    const file = set.laneFiles[name] ?? set.dir;
    const at = `lanes.${name}`;
    const other = ranks.get(lane.rank);
    if (other) add(file, `${at}.rank`, `lane "${other}" has the same rank; ranks order lanes by strictness and must differ`);
    ranks.set(lane.rank, name);

    for (const [detector, rule] of Object.entries(lane.detectors)) {
      if (!(BUILTIN_DETECTOR_NAMES as readonly string[]).includes(detector) && !set.detectors[detector]) {
        add(file, `${at}.detectors.${detector}`, `unknown detector "${detector}" (built in: ${BUILTIN_DETECTOR_NAMES.join(', ')}; or define it under detectors:)`);
      }
      if (typeof rule === 'object' && rule.action === 'escalate') {
        const target = lanes[rule.lane];
        if (!target) add(file, `${at}.detectors.${detector}.lane`, `unknown lane "${rule.lane}"`);
        else if (target.rank <= lane.rank) add(file, `${at}.detectors.${detector}.lane`, `"${rule.lane}" is not stricter than "${name}"; detectors can only raise a lane`);
      }
    }

    const t = lane.tools;
    const checkTool = (list: string[], field: string) =>
      list.forEach((tool, i) => {
        if (tool !== '*' && !catalogued(toolKey(tool))) {
          add(file, `${at}.tools.${field}[${i}]`, `unknown tool "${tool}" (declare it under tools:, or name an MCP server's tool as "<server>__<tool>")`);
        }
      });
    checkTool(t.allow, 'allow');
    checkTool(t.deny, 'deny');
    checkTool(t.require_approval, 'require_approval');
    const allowed = new Set(t.allow.map(toolKey));
    const held = new Set(t.require_approval.map(toolKey));
    for (const tool of t.deny) {
      if (allowed.has(toolKey(tool))) add(file, `${at}.tools.deny`, `"${tool}" is both allowed and denied`);
      if (held.has(toolKey(tool))) add(file, `${at}.tools.require_approval`, `"${tool}" is denied, so it can never be approved`);
    }

    lane.deployments.forEach((d, i) => {
      if (d === '*') return;
      const [provider, model] = d.split('/', 2) as [string, string | undefined];
      const known = config.providers[provider] && (!model || Object.values(config.models).some((m) => m.deployments.some((x) => x.provider === provider && x.model === model)));
      if (!known) add(file, `${at}.deployments[${i}]`, `unknown ${model ? 'deployment' : 'provider'} "${d}" (see ${configFile})`);
    });
  }

  config.keys.forEach((key, i) => {
    if (key.lane && !lanes[key.lane]) add(configFile, `keys[${i}].lane`, `unknown lane "${key.lane}" (lanes: ${Object.keys(lanes).join(', ')})`);
    key.lanes?.forEach((l, j) => {
      if (!lanes[l]) add(configFile, `keys[${i}].lanes[${j}]`, `unknown lane "${l}"`);
    });
  });
  for (const [routeName, route] of Object.entries(config.routes)) {
    route.rules.forEach((rule, i) =>
      rule.match?.lanes?.forEach((l, j) => {
        if (!lanes[l]) add(configFile, `routes.${routeName}.rules[${i}].match.lanes[${j}]`, `unknown lane "${l}"`);
      }),
    );
  }
}
