// A small JSON Schema validator for eval checks: the keywords an output schema
// needs (types, properties, required, additionalProperties, items, enum,
// const, lengths, bounds, pattern, anyOf, oneOf, allOf). A schema using any
// other keyword ($ref, if/then, formats...) is a load error rather than a
// check that silently passes. Schemas compile once, at load.
import { compileLinearRegex } from './regex.js';

export type JsonValidator = (value: unknown, at?: string) => string[];

const TYPES = ['string', 'number', 'integer', 'boolean', 'object', 'array', 'null'] as const;
type JsonType = (typeof TYPES)[number];

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

function typeOf(value: unknown): JsonType | 'other' {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  switch (typeof value) {
    case 'string':
      return 'string';
    case 'boolean':
      return 'boolean';
    case 'number':
      return Number.isInteger(value) ? 'integer' : 'number';
    case 'object':
      return 'object';
    default:
      return 'other';
  }
}

function deepEqual(a: unknown, b: unknown): boolean {
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

export { deepEqual };

/** Compiles a schema; throws JsonSchemaError naming the path of an unsupported or malformed keyword. */
export function compileJsonSchema(schema: unknown, path = '#'): JsonValidator {
  if (schema === true) return () => [];
  if (schema === false) return (_v, at = '') => [`${at || '/'}: no value is allowed here`];
  if (!schema || typeof schema !== 'object' || Array.isArray(schema)) throw new JsonSchemaError(`${path}: a schema is an object (or true/false)`);
  const s = schema as Record<string, unknown>;
  const checks: Array<(value: unknown, at: string, errors: string[]) => void> = [];
  const num = (k: string): number | undefined => {
    if (s[k] === undefined) return undefined;
    if (typeof s[k] !== 'number') throw new JsonSchemaError(`${path}/${k}: expected a number`);
    return s[k] as number;
  };

  for (const k of Object.keys(s)) {
    if (!SUPPORTED.has(k) && !IGNORED.has(k)) throw new JsonSchemaError(`${path}/${k}: the keyword "${k}" is not supported by eval checks (supported: ${[...SUPPORTED].join(', ')})`);
  }

  if (s.type !== undefined) {
    const list = Array.isArray(s.type) ? s.type : [s.type];
    for (const t of list) if (!TYPES.includes(t as JsonType)) throw new JsonSchemaError(`${path}/type: unknown type ${JSON.stringify(t)}`);
    const types = new Set(list as JsonType[]);
    checks.push((v, at, errors) => {
      const t = typeOf(v);
      if (types.has(t as JsonType) || (t === 'integer' && types.has('number'))) return;
      errors.push(`${at || '/'}: expected ${[...types].join(' or ')}, got ${t}`);
    });
  }
  if (s.enum !== undefined) {
    if (!Array.isArray(s.enum)) throw new JsonSchemaError(`${path}/enum: expected an array`);
    const options = s.enum as unknown[];
    checks.push((v, at, errors) => {
      if (!options.some((o) => deepEqual(o, v))) errors.push(`${at || '/'}: must be one of ${options.map((o) => JSON.stringify(o)).join(', ')}`);
    });
  }
  if (Object.hasOwn(s, 'const')) {
    const c = s.const;
    checks.push((v, at, errors) => {
      if (!deepEqual(c, v)) errors.push(`${at || '/'}: must be ${JSON.stringify(c)}`);
    });
  }

  const minLength = num('minLength');
  const maxLength = num('maxLength');
  let pattern: RegExp | undefined;
  if (s.pattern !== undefined) {
    if (typeof s.pattern !== 'string') throw new JsonSchemaError(`${path}/pattern: expected a string`);
    try {
      pattern = compileLinearRegex(s.pattern, '');
    } catch (err) {
      throw new JsonSchemaError(`${path}/pattern: ${(err as Error).message}`);
    }
  }
  if (minLength !== undefined || maxLength !== undefined || pattern) {
    checks.push((v, at, errors) => {
      if (typeof v !== 'string') return;
      const n = [...v].length;
      if (minLength !== undefined && n < minLength) errors.push(`${at || '/'}: shorter than ${minLength} characters`);
      if (maxLength !== undefined && n > maxLength) errors.push(`${at || '/'}: longer than ${maxLength} characters`);
      if (pattern) {
        pattern.lastIndex = 0;
        if (!pattern.test(v)) errors.push(`${at || '/'}: does not match ${JSON.stringify(s.pattern)}`);
      }
    });
  }

  const minimum = num('minimum');
  const maximum = num('maximum');
  const exclusiveMinimum = num('exclusiveMinimum');
  const exclusiveMaximum = num('exclusiveMaximum');
  if ([minimum, maximum, exclusiveMinimum, exclusiveMaximum].some((x) => x !== undefined)) {
    checks.push((v, at, errors) => {
      if (typeof v !== 'number') return;
      if (minimum !== undefined && v < minimum) errors.push(`${at || '/'}: below ${minimum}`);
      if (maximum !== undefined && v > maximum) errors.push(`${at || '/'}: above ${maximum}`);
      if (exclusiveMinimum !== undefined && v <= exclusiveMinimum) errors.push(`${at || '/'}: must be above ${exclusiveMinimum}`);
      if (exclusiveMaximum !== undefined && v >= exclusiveMaximum) errors.push(`${at || '/'}: must be below ${exclusiveMaximum}`);
    });
  }

  if (s.properties !== undefined || s.required !== undefined || s.additionalProperties !== undefined || s.minProperties !== undefined || s.maxProperties !== undefined) {
    if (s.properties !== undefined && (typeof s.properties !== 'object' || s.properties === null || Array.isArray(s.properties))) {
      throw new JsonSchemaError(`${path}/properties: expected an object`);
    }
    const props = new Map<string, JsonValidator>();
    for (const [k, sub] of Object.entries((s.properties ?? {}) as Record<string, unknown>)) props.set(k, compileJsonSchema(sub, `${path}/properties/${k}`));
    if (s.required !== undefined && (!Array.isArray(s.required) || s.required.some((r) => typeof r !== 'string'))) {
      throw new JsonSchemaError(`${path}/required: expected an array of property names`);
    }
    const required = (s.required ?? []) as string[];
    const additional = s.additionalProperties === undefined ? undefined : compileJsonSchema(s.additionalProperties, `${path}/additionalProperties`);
    const minProperties = num('minProperties');
    const maxProperties = num('maxProperties');
    checks.push((v, at, errors) => {
      if (typeOf(v) !== 'object') return;
      const o = v as Record<string, unknown>;
      for (const r of required) if (!Object.hasOwn(o, r)) errors.push(`${at || '/'}: missing required property "${r}"`);
      const keys = Object.keys(o);
      if (minProperties !== undefined && keys.length < minProperties) errors.push(`${at || '/'}: fewer than ${minProperties} properties`);
      if (maxProperties !== undefined && keys.length > maxProperties) errors.push(`${at || '/'}: more than ${maxProperties} properties`);
      for (const k of keys) {
        const sub = props.get(k) ?? additional;
        if (sub) errors.push(...sub(o[k], `${at}/${k}`));
      }
    });
  }

  if (s.items !== undefined || s.minItems !== undefined || s.maxItems !== undefined || s.uniqueItems !== undefined) {
    const items = s.items === undefined ? undefined : compileJsonSchema(s.items, `${path}/items`);
    const minItems = num('minItems');
    const maxItems = num('maxItems');
    const unique = s.uniqueItems === true;
    checks.push((v, at, errors) => {
      if (!Array.isArray(v)) return;
      if (minItems !== undefined && v.length < minItems) errors.push(`${at || '/'}: fewer than ${minItems} items`);
      if (maxItems !== undefined && v.length > maxItems) errors.push(`${at || '/'}: more than ${maxItems} items`);
      if (unique && v.some((x, i) => v.findIndex((y) => deepEqual(x, y)) !== i)) errors.push(`${at || '/'}: items must be unique`);
      if (items) v.forEach((x, i) => errors.push(...items(x, `${at}/${i}`)));
    });
  }

  for (const k of ['anyOf', 'oneOf', 'allOf'] as const) {
    if (s[k] === undefined) continue;
    if (!Array.isArray(s[k]) || (s[k] as unknown[]).length === 0) throw new JsonSchemaError(`${path}/${k}: expected a non-empty array of schemas`);
    const subs = (s[k] as unknown[]).map((sub, i) => compileJsonSchema(sub, `${path}/${k}/${i}`));
    checks.push((v, at, errors) => {
      const results = subs.map((sub) => sub(v, at));
      const passed = results.filter((r) => r.length === 0).length;
      if (k === 'allOf') for (const r of results) errors.push(...r);
      else if (k === 'anyOf' && passed === 0) errors.push(`${at || '/'}: matches none of anyOf (${results.map((r) => r[0]).join('; ')})`);
      else if (k === 'oneOf' && passed !== 1) errors.push(`${at || '/'}: must match exactly one of oneOf, matches ${passed}`);
    });
  }

  return (value, at = '') => {
    const errors: string[] = [];
    for (const check of checks) check(value, at, errors);
    return errors;
  };
}
