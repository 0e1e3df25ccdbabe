// Pipeline stages that read the body and validate it. What is forwarded later
// is this parsed, validated object re-serialised, never the raw bytes.
import type { z } from 'zod';
import { formatIssuePath, GatewayError } from '../errors.js';
import type { RequestContext } from '../pipeline/context.js';
import { chatRequestSchema, embeddingsRequestSchema } from './schemas.js';

export async function parseChatRequest(ctx: RequestContext): Promise<void> {
  const chat = validate(chatRequestSchema, await ctx.readBody());
  ctx.chat = chat;
  ctx.stream = chat.stream === true;
  ctx.requestedModel = chat.model;
}

export async function parseEmbeddingsRequest(ctx: RequestContext): Promise<void> {
  const embeddings = validate(embeddingsRequestSchema, await ctx.readBody());
  ctx.embeddings = embeddings;
  ctx.requestedModel = embeddings.model;
}

function validate<S extends z.ZodType>(schema: S, body: unknown): z.infer<S> {
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
