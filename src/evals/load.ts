// Parses and compiles one eval set file, YAML or JSONL (see schema.ts for the
// format). Every problem is reported with its line, and a set with any
// problem is not loaded.
import { isMap, isSeq, LineCounter, parseDocument } from 'yaml';
import type { ConfigProblem } from '../config/load.js';
import { formatIssuePath } from '../errors.js';
import { compileCheck, type CompiledCheck } from './checks.js';
import { evalCaseSchema, evalHeaderSchema, MAX_CASES, type CheckConfig } from './schema.js';
import { sha256Hex } from '../sha256.js';

export interface EvalCase {
  id: string;
  variables: Record<string, unknown>;
  checks: CompiledCheck[];
  note: string | undefined;
  /** 1-based line in the file. */
  line: number;
}

export interface EvalSet {
  name: string;
  version: string;
  file: string;
  /** sha256 of the file, recorded in reports. */
  sha256: string;
  /** The prompt the set is for. */
  prompt: string;
  threshold: number;
  description: string | undefined;
  judgeModel: string | undefined;
  /** Checks for every output of a shadow run (no judges). */
  shadowChecks: CompiledCheck[];
  cases: EvalCase[];
}

type Entry = { line: number; value: unknown };
type Add = (line: number, at: string, message: string) => void;

/** JSONL: the header, then one case, a line each. */
function jsonlEntries(text: string, add: Add): Entry[] | undefined {
  const entries: Entry[] = [];
  let broken = false;
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (line === '') return;
    try {
      entries.push({ line: i + 1, value: JSON.parse(line) });
    } catch (err) {
      broken = true;
      add(i + 1, '', `not valid JSON: ${(err as Error).message}`);
    }
  });
  return broken ? undefined : entries;
}

/**
 * YAML: a mapping of `eval_set` (the header) and `cases` (a list), turned into
 * the same entries as JSONL's, each with the line it starts on.
 */
function yamlEntries(text: string, add: Add): Entry[] | undefined {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter });
  for (const e of doc.errors) add(e.linePos?.[0]?.line ?? 1, '', `YAML syntax: ${e.message}`);
  if (doc.errors.length > 0) return undefined;
  const lineOf = (node: unknown) => {
    const range = (node as { range?: [number, number, number] } | null)?.range;
    return range ? lineCounter.linePos(range[0]).line : 1;
  };
  const root = doc.contents;
  if (!isMap(root) || !root.has('eval_set')) {
    add(1, '', 'an eval set in YAML is a mapping of eval_set (the header: threshold, prompt...) and cases (a list)');
    return undefined;
  }
  const entries: Entry[] = [{ line: lineOf(root.get('eval_set', true)), value: { eval_set: (root.toJSON() as { eval_set: unknown }).eval_set } }];
  const cases = root.get('cases', true);
  if (cases !== undefined && !isSeq(cases)) {
    add(lineOf(cases), 'cases', 'expected a list of cases');
    return undefined;
  }
  for (const item of cases?.items ?? []) entries.push({ line: lineOf(item), value: (item as { toJSON(): unknown }).toJSON() });
  for (const pair of root.items) {
    const key = String((pair.key as { value?: unknown } | null)?.value ?? pair.key);
    if (key !== 'eval_set' && key !== 'cases') add(lineOf(pair.key), key, 'unknown key (an eval set has eval_set and cases)');
  }
  return entries;
}

/** `knownModel` checks judge models against the config (chat models and routes). */
export function parseEvalSet(text: string, file: string, name: string, version: string, problems: ConfigProblem[], knownModel: (name: string) => boolean = () => true): EvalSet | undefined {
  const before = problems.length;
  const add = (line: number, at: string, message: string) => problems.push({ file, path: `line ${line}${at ? `: ${at}` : ''}`, message });
  // Undefined when the file does not parse: nothing more can be said of it.
  const entries = /\.ya?ml$/.test(file) ? yamlEntries(text, add) : jsonlEntries(text, add);
  if (!entries) return undefined;
  const first = entries.shift();
  if (!first) {
    add(1, '', 'the file is empty; the first line is the header: {"eval_set": {"threshold": 0.9}}');
    return undefined;
  }
  const header = evalHeaderSchema.safeParse(first.value);
  if (!header.success) {
    for (const issue of header.error.issues) add(first.line, formatIssuePath(issue.path), issue.message);
    if (!(first.value && typeof first.value === 'object' && 'eval_set' in first.value)) add(first.line, '', 'the first line is the header: {"eval_set": {"threshold": 0.9, ...}}');
    return undefined;
  }
  const h = header.data.eval_set;
  if (h.judge_model && !knownModel(h.judge_model)) add(first.line, 'eval_set.judge_model', `unknown chat model or route "${h.judge_model}"`);
  const compile = (line: number, at: string, config: CheckConfig): CompiledCheck | undefined => {
    try {
      return compileCheck(config);
    } catch (err) {
      add(line, at, (err as Error).message);
      return undefined;
    }
  };
  const shadowChecks = h.shadow_checks.map((c, i) => compile(first.line, `eval_set.shadow_checks[${i}]`, c)).filter((c): c is CompiledCheck => c !== undefined);

  const cases: EvalCase[] = [];
  const ids = new Set<string>();
  for (const { line, value } of entries) {
    const parsed = evalCaseSchema.safeParse(value);
    if (!parsed.success) {
      for (const issue of parsed.error.issues) add(line, formatIssuePath(issue.path), issue.message);
      continue;
    }
    const c = parsed.data;
    if (ids.has(c.id)) add(line, 'id', `duplicate case id "${c.id}"`);
    ids.add(c.id);
    const checks: CompiledCheck[] = [];
    c.checks.forEach((check, i) => {
      if (check.type === 'judge' && !check.model && !h.judge_model) add(line, `checks[${i}].model`, 'a judge check needs a model (or set judge_model in the header)');
      if (check.type === 'judge' && check.model && !knownModel(check.model)) add(line, `checks[${i}].model`, `unknown chat model or route "${check.model}"`);
      const compiled = compile(line, `checks[${i}]`, check);
      if (compiled) checks.push(compiled);
    });
    cases.push({ id: c.id, variables: c.variables, checks, note: c.note, line });
  }
  if (cases.length === 0 && problems.length === before) add(first.line, '', 'the set has no cases (after the header: one JSON object a line in JSONL, a `cases` list in YAML)');
  if (cases.length > MAX_CASES) add(first.line, '', `the set has ${cases.length} cases; at most ${MAX_CASES} are allowed (10 to 30 is the usual size)`);
  if (problems.length > before) return undefined;
  return {
    name,
    version,
    file,
    sha256: sha256Hex(text),
    prompt: h.prompt ?? name,
    threshold: h.threshold,
    description: h.description,
    judgeModel: h.judge_model,
    shadowChecks,
    cases,
  };
}
