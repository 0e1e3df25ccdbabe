// JSON Schema for eval checks, validated by ajv (draft-07), with `pattern` on
// RE2 like every other regexp from an eval set (regex.ts). Eval sets may use
// the keywords an output schema needs (types, properties, required,
// additionalProperties, items, enum, const, lengths, bounds, pattern, anyOf,
// oneOf, allOf); any other ($ref, if/then, formats...) is a load error, as
// before ajv, so a set that loads on one version loads on the next. Schemas
// compile once, at load, and errors are put in the words eval reports use.
import { Ajv, type ErrorObject, type Options } from 'ajv';
import { compileLinearRegex } from './regex.js';

export type JsonValidator = (value: unknown) => string[];

/** Keywords that only annotate. */
const IGNORED = new Set(['$schema', '$id', 'title', 'description', 'default', 'examples', '$comment', 'deprecated', 'readOnly', 'writeOnly']);
const SUPPORTED = new Set([
  'type',
  'properties',
  'required',
  'additionalProperties',
  'items',
  'minItems',
  'maxItems',
  'uniqueItems',
  'enum',
  'const',
  'minLength',
  'maxLength',
  'pattern',
  'minimum',
  'maximum',
  'exclusiveMinimum',
  'exclusiveMaximum',
  'anyOf',
  'oneOf',
  'allOf',
  'minProperties',
  'maxProperties',
]);

export class JsonSchemaError extends Error {
  override name = 'JsonSchemaError';
}

// Patterns are JavaScript syntax without flags, as before ajv (so `unicodeRegExp: false`).
type RegExpEngine = NonNullable<NonNullable<Options['code']>['regExp']>;
const regExp: RegExpEngine = Object.assign((pattern: string) => compileLinearRegex(pattern, ''), { code: 'compileLinearRegex' });

const ajv = new Ajv({
  allErrors: true,
  verbose: true, // errors carry the value, for "got string"
  unicodeRegExp: false,
  code: { regExp },
  // Eval sets are independent: an $id in one must not clash with another's.
  addUsedSchema: false,
  strictTypes: false,
  strictTuples: false,
  logger: false,
});

function typeOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'number') return Number.isInteger(value) ? 'integer' : 'number';
  return typeof value;
}

export function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== typeof b || a === null || b === null || typeof a !== 'object') return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a)) {
    const bb = b as unknown[];
    return a.length === bb.length && a.every((x, i) => deepEqual(x, bb[i]));
  }
  const ka = Object.keys(a as object);
  const kb = Object.keys(b as object);
  return ka.length === kb.length && ka.every((k) => Object.hasOwn(b as object, k) && deepEqual((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
}

/** Refuses keywords outside the subset and patterns RE2 cannot run, naming the schema path. */
function checkKeywords(schema: unknown, path: string): void {
  if (typeof schema === 'boolean') return;
  if (!schema || typeof schema !== 'object' || Array.isArray(schema)) throw new JsonSchemaError(`${path}: a schema is an object (or true/false)`);
  const s = schema as Record<string, unknown>;
  for (const k of Object.keys(s)) {
    if (!SUPPORTED.has(k) && !IGNORED.has(k)) throw new JsonSchemaError(`${path}/${k}: the keyword "${k}" is not supported by eval checks (supported: ${[...SUPPORTED].join(', ')})`);
  }
  if (typeof s.pattern === 'string') {
    try {
      compileLinearRegex(s.pattern, '');
    } catch (err) {
      throw new JsonSchemaError(`${path}/pattern: ${(err as Error).message}`);
    }
  }
  if (s.properties && typeof s.properties === 'object' && !Array.isArray(s.properties)) {
    for (const [k, sub] of Object.entries(s.properties)) checkKeywords(sub, `${path}/properties/${k}`);
  }
  if (s.additionalProperties !== undefined) checkKeywords(s.additionalProperties, `${path}/additionalProperties`);
  if (s.items !== undefined) checkKeywords(s.items, `${path}/items`);
  for (const k of ['anyOf', 'oneOf', 'allOf'] as const) {
    if (s[k] === undefined) continue;
    if (!Array.isArray(s[k]) || s[k].length === 0) throw new JsonSchemaError(`${path}/${k}: expected a non-empty array of schemas`);
    s[k].forEach((sub: unknown, i: number) => checkKeywords(sub, `${path}/${k}/${i}`));
  }
}

/** One ajv error in the words of eval reports ("/tags: more than 2 items"). */
function describe(e: ErrorObject): string {
  const at = e.instancePath || '/';
  const p = e.params as Record<string, unknown>;
  switch (e.keyword) {
    case 'type':
      return `${at}: expected ${(Array.isArray(e.schema) ? e.schema : [e.schema]).join(' or ')}, got ${typeOf(e.data)}`;
    case 'enum':
      return `${at}: must be one of ${(p.allowedValues as unknown[]).map((o) => JSON.stringify(o)).join(', ')}`;
    case 'const':
      return `${at}: must be ${JSON.stringify(p.allowedValue)}`;
    case 'minLength':
      return `${at}: shorter than ${String(p.limit)} characters`;
    case 'maxLength':
      return `${at}: longer than ${String(p.limit)} characters`;
    case 'pattern':
      return `${at}: does not match ${JSON.stringify(p.pattern)}`;
    case 'minimum':
      return `${at}: below ${String(p.limit)}`;
    case 'maximum':
      return `${at}: above ${String(p.limit)}`;
    case 'exclusiveMinimum':
      return `${at}: must be above ${String(p.limit)}`;
    case 'exclusiveMaximum':
      return `${at}: must be below ${String(p.limit)}`;
    case 'required':
      return `${at}: missing required property "${String(p.missingProperty)}"`;
    case 'minProperties':
      return `${at}: fewer than ${String(p.limit)} properties`;
    case 'maxProperties':
      return `${at}: more than ${String(p.limit)} properties`;
    case 'additionalProperties':
      return `${e.instancePath}/${String(p.additionalProperty).replaceAll('~', '~0').replaceAll('/', '~1')}: no value is allowed here`;
    case 'false schema':
      return `${at}: no value is allowed here`;
    case 'minItems':
      return `${at}: fewer than ${String(p.limit)} items`;
    case 'maxItems':
      return `${at}: more than ${String(p.limit)} items`;
    case 'uniqueItems':
      return `${at}: items must be unique`;
    default:
      return `${at}: ${e.message ?? e.keyword}`;
  }
}

/**
 * ajv's errors as eval reports show them. An anyOf or oneOf that fails is one
 * error, not its branches' errors: "matches none of anyOf (the first error of
 * each branch)", "must match exactly one of oneOf, matches 2".
 */
function describeAll(errors: readonly ErrorObject[]): string[] {
  const out: string[] = [];
  let pending: ErrorObject[] = [];
  for (const e of errors) {
    if (e.keyword !== 'anyOf' && e.keyword !== 'oneOf') {
      pending.push(e);
      continue;
    }
    // ajv reports a combinator's branch errors just before its own error.
    const branchPrefix = `${e.schemaPath}/`;
    const branches = pending.filter((b) => b.schemaPath.startsWith(branchPrefix));
    pending = pending.filter((b) => !b.schemaPath.startsWith(branchPrefix));
    out.push(...pending.map(describe));
    pending = [];
    const at = e.instancePath || '/';
    if (e.keyword === 'anyOf') {
      const first = new Map<string, string>();
      for (const b of branches) {
        const index = b.schemaPath.slice(branchPrefix.length).split('/')[0]!;
        if (!first.has(index)) first.set(index, describe(b));
      }
      out.push(`${at}: matches none of anyOf (${[...first.values()].join('; ')})`);
    } else {
      const passing = (e.params as { passingSchemas: number[] | null }).passingSchemas;
      out.push(`${at}: must match exactly one of oneOf, matches ${passing ? passing.length : 0}`);
    }
  }
  out.push(...pending.map(describe));
  return out;
}

/** Compiles a schema; throws JsonSchemaError naming the path of an unsupported or malformed keyword. */
export function compileJsonSchema(schema: unknown): JsonValidator {
  checkKeywords(schema, '#');
  // Which draft a set names does not change what the subset means.
  const own = typeof schema === 'object' && schema !== null && '$schema' in schema ? Object.fromEntries(Object.entries(schema).filter(([k]) => k !== '$schema')) : schema;
  if (!ajv.validateSchema(own as object | boolean)) {
    // The meta-schema reports a bad keyword several ways (enum, then type, then anyOf): the first says it.
    const first = new Map<string, ErrorObject>();
    for (const e of ajv.errors ?? []) if (!first.has(e.instancePath)) first.set(e.instancePath, e);
    throw new JsonSchemaError([...first.values()].map((e) => `#${e.instancePath}: ${e.message ?? e.keyword} (got ${JSON.stringify(e.data)})`).join('; '));
  }
  let validate: ReturnType<Ajv['compile']>;
  try {
    validate = ajv.compile(own as object | boolean);
  } catch (err) {
    throw new JsonSchemaError(`#: ${(err as Error).message}`, { cause: err });
  }
  return (value) => (validate(value) ? [] : inValueOrder(value, describeAll(validate.errors ?? [])));
}

/**
 * Errors in the order of the places they are about, each place before what it
 * holds ("/tags" before "/tags/0"), as a reader goes through the value; ajv
 * groups them by keyword instead.
 */
function inValueOrder(value: unknown, errors: string[]): string[] {
  const order = new Map<string, number>();
  const walk = (v: unknown, at: string): void => {
    order.set(at || '/', order.size);
    if (v && typeof v === 'object') for (const [k, child] of Object.entries(v)) walk(child, `${at}/${k.replaceAll('~', '~0').replaceAll('/', '~1')}`);
  };
  walk(value, '');
  const rank = (error: string) => order.get(error.slice(0, error.indexOf(': '))) ?? order.size;
  return errors.map((error, i) => ({ error, i, rank: rank(error) })).sort((a, b) => a.rank - b.rank || a.i - b.i).map((x) => x.error);
}
