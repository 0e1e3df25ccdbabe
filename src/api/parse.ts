// Pipeline stages that read the body and validate it. What is forwarded later
// is this parsed, validated object re-serialised, never the raw bytes.
import type { RequestContext } from '../pipeline/context.js';
import { chatRequestSchema, embeddingsRequestSchema } from './schemas.js';
import { validateBody } from './validate.js';

export async function parseChatRequest(ctx: RequestContext): Promise<void> {
  const chat = validateBody(chatRequestSchema, await ctx.readBody());
  ctx.chat = chat;
  ctx.stream = chat.stream === true;
  ctx.requestedModel = chat.model;
}

export async function parseEmbeddingsRequest(ctx: RequestContext): Promise<void> {
  const embeddings = validateBody(embeddingsRequestSchema, await ctx.readBody());
  ctx.embeddings = embeddings;
  ctx.requestedModel = embeddings.model;
}
