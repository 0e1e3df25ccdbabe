// The pipeline, in order. Each stage lives in its own module; adding one is a
// line here. See shared/DESIGN.md for why the order is what it is.
//
// Authentication runs before the body is read, so an unauthenticated client
// cannot make the gateway buffer megabytes.
import { parseChatRequest, parseEmbeddingsRequest } from '../api/parse.js';
import { authenticate } from '../auth/stage.js';
import { dispatchChat, dispatchEmbeddings } from '../routing/dispatch.js';
import { resolveModel } from '../routing/resolve.js';
import type { Stage } from './context.js';

export const chatPipeline: readonly Stage[] = [
  authenticate, //       key -> app, team
  parseChatRequest, //   read, parse, validate (zod)
  resolveModel, //       model name -> candidate deployments
  dispatchChat, //       call the provider, with fallback
];

export const embeddingsPipeline: readonly Stage[] = [authenticate, parseEmbeddingsRequest, resolveModel, dispatchEmbeddings];
