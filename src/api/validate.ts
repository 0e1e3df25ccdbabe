// A request body checked against an ingress schema, with the first problem
// named by its path (`input[2].call_id`) as the error's param. Every ingress
// (chat, embeddings, Responses, Messages) validates through it, so all report alike.
import type { z } from 'zod';
import { formatIssuePath, GatewayError } from '../errors.js';

export function validateBody<S extends z.ZodType>(schema: S, body: unknown): z.output<S> {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw new GatewayError('invalid_request', 'The request body must be a JSON object.');
  }
  const result = schema.safeParse(body);
  if (result.success) return result.data;
  const issues = result.error.issues;
  const first = issues[0]!;
  const describe = (i: z.core.$ZodIssue) => `${formatIssuePath(i.path) || '(body)'}: ${i.message}`;
  const more = issues.length > 1 ? ` (and ${issues.length - 1} more: ${issues.slice(1, 4).map(describe).join('; ')})` : '';
  throw new GatewayError('invalid_request', `Invalid request: ${describe(first)}${more}`, { param: formatIssuePath(first.path) || null });
}
