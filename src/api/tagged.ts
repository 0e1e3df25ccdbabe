// A union chosen by its `type` field. zod's plain union reports a wrong
// function_call item as "Invalid input" (every branch failed), or worse,
// lets it through as the catch-all branch; choosing the schema by `type`
// first reports the real problem ("input[2].call_id: expected string") and
// still accepts types the gateway does not know, for native upstreams.
import { z } from 'zod';

type Schemas = Record<string, z.ZodType>;

export function tagged<S extends Schemas, F extends z.ZodType>(
  schemas: S,
  fallback: F,
  options: { untagged?: keyof S & string } = {},
): z.ZodType<z.output<S[keyof S]> | z.output<F>> {
  return z.unknown().transform((value, ctx) => {
    const obj = value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
    if (!obj) {
      ctx.addIssue({ code: 'custom', message: 'expected an object' });
      return z.NEVER;
    }
    const type = obj.type === undefined ? options.untagged : obj.type;
    const schema = typeof type === 'string' && Object.hasOwn(schemas, type) ? schemas[type]! : fallback;
    const result = schema.safeParse(value);
    if (result.success) return result.data as z.output<S[keyof S]> | z.output<F>;
    for (const issue of result.error.issues) ctx.addIssue({ code: 'custom', message: issue.message, path: issue.path });
    return z.NEVER;
  });
}

/** A string, or else `other`, whose own issues are reported (a plain union would only say "Invalid input"). */
export function stringOr<S extends z.ZodType>(other: S, message: string): z.ZodType<string | z.output<S>> {
  return z.unknown().transform((value, ctx) => {
    if (typeof value === 'string') return value;
    if (!Array.isArray(value)) {
      ctx.addIssue({ code: 'custom', message });
      return z.NEVER;
    }
    const result = other.safeParse(value);
    if (result.success) return result.data as z.output<S>;
    for (const issue of result.error.issues) ctx.addIssue({ code: 'custom', message: issue.message, path: issue.path });
    return z.NEVER;
  });
}
