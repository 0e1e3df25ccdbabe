// Checks compile once, at load (regexes on the linear engine, JSON schemas
// into validators), and then judge one output each. Judge checks call a
// model, so they are async and need a caller-supplied judge.
import { compileJsonSchema, deepEqual, type JsonValidator } from './json-schema.js';
import { compileLinearRegex } from './regex.js';
import type { CheckConfig } from './schema.js';

/** What a model answered, reduced to what checks look at. */
export interface EvalOutput {
  content: string | null;
  tool_calls: Array<{ name: string; arguments: string }>;
}

export interface CheckResult {
  type: CheckConfig['type'];
  pass: boolean;
  /** Why it failed (or the judge's reason); short, never the whole output. */
  detail?: string;
}

export type CompiledCheck =
  | { type: 'exact' | 'contains' | 'regex' | 'json_schema' | 'tool_call'; config: CheckConfig; run(output: EvalOutput): CheckResult }
  | { type: 'judge'; config: Extract<CheckConfig, { type: 'judge' }>; rubric: string; model: string | undefined };

export type Judge = (check: Extract<CompiledCheck, { type: 'judge' }>, output: EvalOutput) => Promise<CheckResult>;

const MAX_DETAIL = 160;

function clip(text: string): string {
  return text.length > MAX_DETAIL ? `${text.slice(0, MAX_DETAIL)}…` : text;
}

/** Compiles a check; throws with a message naming what is wrong. */
export function compileCheck(config: CheckConfig): CompiledCheck {
  switch (config.type) {
    case 'exact': {
      const want = config.trim ? config.value.trim() : config.value;
      return {
        type: 'exact',
        config,
        run(o) {
          const got = o.content === null ? null : config.trim ? o.content.trim() : o.content;
          return got === want ? { type: 'exact', pass: true } : { type: 'exact', pass: false, detail: `expected ${clip(JSON.stringify(want))}, got ${got === null ? 'no text' : clip(JSON.stringify(got))}` };
        },
      };
    }
    case 'contains': {
      const needle = config.ignore_case ? config.value.toLowerCase() : config.value;
      return {
        type: 'contains',
        config,
        run(o) {
          const text = o.content ?? '';
          const found = (config.ignore_case ? text.toLowerCase() : text).includes(needle);
          const pass = found !== config.not;
          return pass ? { type: 'contains', pass } : { type: 'contains', pass, detail: `${config.not ? 'contains' : 'does not contain'} ${clip(JSON.stringify(config.value))}` };
        },
      };
    }
    case 'regex': {
      const re = compileLinearRegex(config.pattern, config.flags);
      return {
        type: 'regex',
        config,
        run(o) {
          const found = re.test(o.content ?? '');
          const pass = found !== config.not;
          return pass ? { type: 'regex', pass } : { type: 'regex', pass, detail: `${config.not ? 'matches' : 'does not match'} /${clip(config.pattern)}/${config.flags}` };
        },
      };
    }
    case 'json_schema': {
      const validate: JsonValidator = compileJsonSchema(config.schema);
      return {
        type: 'json_schema',
        config,
        run(o) {
          const parsed = extractJson(o.content);
          if (!parsed.ok) return { type: 'json_schema', pass: false, detail: 'the output holds no JSON value' };
          const errors = validate(parsed.value);
          return errors.length === 0 ? { type: 'json_schema', pass: true } : { type: 'json_schema', pass: false, detail: clip(errors.slice(0, 3).join('; ')) };
        },
      };
    }
    case 'tool_call':
      return {
        type: 'tool_call',
        config,
        run(o) {
          const calls = o.tool_calls.filter((c) => c.name === config.name);
          if (calls.length === 0) {
            const made = o.tool_calls.map((c) => c.name);
            return { type: 'tool_call', pass: false, detail: `no call to ${config.name}${made.length > 0 ? ` (called: ${made.join(', ')})` : ''}` };
          }
          if (!config.arguments) return { type: 'tool_call', pass: true };
          let last = '';
          for (const call of calls) {
            let args: unknown;
            try {
              args = JSON.parse(call.arguments);
            } catch {
              last = 'the call\'s arguments are not valid JSON';
              continue;
            }
            const mismatch = argumentsMismatch(config.arguments, args, config.exact_arguments);
            if (!mismatch) return { type: 'tool_call', pass: true };
            last = mismatch;
          }
          return { type: 'tool_call', pass: false, detail: clip(last) };
        },
      };
    case 'judge':
      return { type: 'judge', config, rubric: config.rubric, model: config.model };
  }
}

function argumentsMismatch(want: Record<string, unknown>, got: unknown, exact: boolean): string | undefined {
  if (!got || typeof got !== 'object' || Array.isArray(got)) return 'the call\'s arguments are not an object';
  const g = got as Record<string, unknown>;
  for (const [k, v] of Object.entries(want)) {
    if (!Object.hasOwn(g, k)) return `argument "${k}" is missing`;
    if (!deepEqual(v, g[k])) return `argument "${k}" is ${JSON.stringify(g[k])}, expected ${JSON.stringify(v)}`;
  }
  if (exact) {
    const extra = Object.keys(g).filter((k) => !Object.hasOwn(want, k));
    if (extra.length > 0) return `unexpected arguments: ${extra.join(', ')}`;
  }
  return undefined;
}

/**
 * The JSON value in an output: the whole text, else a ```json fenced block,
 * else the span from the first "{" or "[" to the last matching bracket.
 * Models often wrap JSON in prose or fences; the schema judges the value.
 */
export function extractJson(text: string | null): { ok: true; value: unknown } | { ok: false } {
  if (text === null) return { ok: false };
  const attempts: string[] = [text];
  const fence = /```(?:json)?\s*\n([\s\S]*?)```/.exec(text);
  if (fence) attempts.push(fence[1]!);
  for (const [open, close] of [
    ['{', '}'],
    ['[', ']'],
  ] as const) {
    const a = text.indexOf(open);
    const b = text.lastIndexOf(close);
    if (a >= 0 && b > a) attempts.push(text.slice(a, b + 1));
  }
  for (const candidate of attempts) {
    try {
      return { ok: true, value: JSON.parse(candidate) };
    } catch {
      // next
    }
  }
  return { ok: false };
}

/** Runs checks in order; judge checks only when a judge is given (otherwise they are skipped, not passed). */
export async function runChecks(checks: readonly CompiledCheck[], output: EvalOutput, judge?: Judge): Promise<CheckResult[]> {
  const results: CheckResult[] = [];
  for (const check of checks) {
    if (check.type === 'judge') {
      if (judge) results.push(await judge(check, output));
      continue;
    }
    results.push(check.run(output));
  }
  return results;
}

/** Runs the checks that need no model (shadow runs never pay for a judge). */
export function runPlainChecks(checks: readonly CompiledCheck[], output: EvalOutput): CheckResult[] {
  const results: CheckResult[] = [];
  for (const check of checks) if (check.type !== 'judge') results.push(check.run(output));
  return results;
}

/** The output of a chat.completion's first choice. */
export function outputOf(completion: unknown): EvalOutput {
  const message = (completion as { choices?: Array<{ message?: { content?: unknown; tool_calls?: unknown } }> } | undefined)?.choices?.[0]?.message;
  const content = typeof message?.content === 'string' ? message.content : null;
  const calls = Array.isArray(message?.tool_calls) ? (message.tool_calls as Array<{ function?: { name?: unknown; arguments?: unknown } }>) : [];
  return {
    content,
    tool_calls: calls.map((c) => ({ name: String(c.function?.name ?? ''), arguments: typeof c.function?.arguments === 'string' ? c.function.arguments : '' })),
  };
}
