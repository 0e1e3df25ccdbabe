// A template's declared variables: what an app may send, checked on every
// request before anything is rendered. Unknown names, missing required ones,
// wrong types and oversized values are all reported at once; a request with
// any problem is refused whole, so nothing partly rendered goes upstream.
import { z } from 'zod';
import type { TemplateValue } from './template.js';

/** Limits that apply when a declaration sets none, so no value is unbounded. */
export const DEFAULT_LIMITS = { max_length: 10_000, max_items: 100, item_max_length: 1_000 } as const;

export const VARIABLE_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;

export const variableSchema = z.strictObject({
  type: z.enum(['string', 'number', 'integer', 'boolean', 'array']),
  /** Arrays hold strings; the only item type, stated for readers. */
  items: z.literal('string').optional(),
  required: z.boolean().default(false),
  description: z.string().optional(),
  /** Strings: most characters. Arrays: most characters per item (item_max_length is an alias). */
  max_length: z.number().int().positive().max(1_000_000).optional(),
  item_max_length: z.number().int().positive().max(1_000_000).optional(),
  /** Arrays: most items. */
  max_items: z.number().int().positive().max(10_000).optional(),
  /** Strings: the only values allowed. */
  enum: z.array(z.string()).min(1).optional(),
  /** Numbers: bounds, inclusive. */
  minimum: z.number().optional(),
  maximum: z.number().optional(),
  /** Used when the app sends nothing (optional variables only); checked against the declaration at load. */
  default: z.unknown().optional(),
  /** Shown by GET /admin/prompts/{name}/{version}, rendered in place of a real value; checked at load. */
  example: z.unknown().optional(),
});

/** Settings that contradict the type or each other, as [field, message]. */
export function declarationProblems(v: VariableConfig): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  if (v.items && v.type !== 'array') out.push(['items', 'items applies to arrays only']);
  if (v.max_items !== undefined && v.type !== 'array') out.push(['max_items', 'max_items applies to arrays only']);
  if (v.item_max_length !== undefined && v.type !== 'array') out.push(['item_max_length', 'item_max_length applies to arrays only']);
  if (v.max_length !== undefined && v.type !== 'string' && v.type !== 'array') out.push(['max_length', 'max_length applies to strings and array items only']);
  if (v.enum && v.type !== 'string') out.push(['enum', 'enum applies to strings only']);
  if ((v.minimum !== undefined || v.maximum !== undefined) && v.type !== 'number' && v.type !== 'integer') out.push(['minimum', 'minimum and maximum apply to numbers only']);
  if (v.required && v.default !== undefined) out.push(['default', 'a required variable has no default (the app must send it)']);
  return out;
}

export type VariableConfig = z.infer<typeof variableSchema>;

export interface CompiledVariable {
  name: string;
  type: VariableConfig['type'];
  required: boolean;
  description: string | undefined;
  maxLength: number;
  maxItems: number;
  enum: ReadonlySet<string> | undefined;
  minimum: number | undefined;
  maximum: number | undefined;
  default: TemplateValue;
  example: TemplateValue;
}

export function compileVariable(name: string, v: VariableConfig): CompiledVariable {
  return {
    name,
    type: v.type,
    required: v.required,
    description: v.description,
    maxLength: v.type === 'array' ? (v.item_max_length ?? v.max_length ?? DEFAULT_LIMITS.item_max_length) : (v.max_length ?? DEFAULT_LIMITS.max_length),
    maxItems: v.max_items ?? DEFAULT_LIMITS.max_items,
    enum: v.enum ? new Set(v.enum) : undefined,
    minimum: v.minimum,
    maximum: v.maximum,
    default: v.default as TemplateValue,
    example: v.example as TemplateValue,
  };
}

/** Why a value does not fit a declaration, or undefined when it does. */
export function checkValue(v: CompiledVariable, value: unknown): string | undefined {
  switch (v.type) {
    case 'string': {
      if (typeof value !== 'string') return `must be a string, got ${describe(value)}`;
      if (value.length > v.maxLength) return `is ${value.length} characters long; at most ${v.maxLength} are allowed`;
      if (v.enum && !v.enum.has(value)) return `must be one of ${[...v.enum].map((e) => JSON.stringify(e)).join(', ')}`;
      return undefined;
    }
    case 'number':
    case 'integer': {
      if (typeof value !== 'number' || !Number.isFinite(value)) return `must be a ${v.type}, got ${describe(value)}`;
      if (v.type === 'integer' && !Number.isInteger(value)) return `must be an integer, got ${value}`;
      if (v.minimum !== undefined && value < v.minimum) return `must be at least ${v.minimum}`;
      if (v.maximum !== undefined && value > v.maximum) return `must be at most ${v.maximum}`;
      return undefined;
    }
    case 'boolean':
      return typeof value === 'boolean' ? undefined : `must be true or false, got ${describe(value)}`;
    case 'array': {
      if (!Array.isArray(value)) return `must be an array of strings, got ${describe(value)}`;
      if (value.length > v.maxItems) return `has ${value.length} items; at most ${v.maxItems} are allowed`;
      for (const [i, item] of value.entries()) {
        if (typeof item !== 'string') return `item ${i} must be a string, got ${describe(item)}`;
        if (item.length > v.maxLength) return `item ${i} is ${item.length} characters long; at most ${v.maxLength} are allowed`;
      }
      return undefined;
    }
  }
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? 'an object' : typeof value;
}

export interface VariableProblem {
  name: string;
  message: string;
}

/**
 * Checks what an app sent against the declarations and returns the values to
 * render (defaults filled in), or every problem found.
 */
export function bindVariables(
  declared: ReadonlyMap<string, CompiledVariable>,
  sent: unknown,
): { ok: true; values: Record<string, TemplateValue> } | { ok: false; problems: VariableProblem[] } {
  const problems: VariableProblem[] = [];
  if (sent !== undefined && (sent === null || typeof sent !== 'object' || Array.isArray(sent))) {
    return { ok: false, problems: [{ name: '', message: `variables must be an object of name: value, got ${describe(sent)}` }] };
  }
  const given = (sent ?? {}) as Record<string, unknown>;
  const values: Record<string, TemplateValue> = {};
  for (const name of Object.keys(given)) {
    if (!declared.has(name)) {
      const known = [...declared.keys()];
      problems.push({ name, message: `is not a variable of this template (it declares ${known.length > 0 ? known.join(', ') : 'none'})` });
    }
  }
  for (const v of declared.values()) {
    const value = Object.hasOwn(given, v.name) ? given[v.name] : undefined;
    if (value === undefined || value === null) {
      if (v.required) problems.push({ name: v.name, message: 'is required' });
      else values[v.name] = v.default;
      continue;
    }
    const wrong = checkValue(v, value);
    if (wrong) problems.push({ name: v.name, message: wrong });
    else values[v.name] = value as TemplateValue;
  }
  return problems.length > 0 ? { ok: false, problems } : { ok: true, values };
}
