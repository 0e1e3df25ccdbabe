// What a Responses API request keeps on its context (ctx.responses): the
// ingress's parse stage fills it, its renderer and the store's after stage
// read it. The governance stages never do: they work on ctx.chat.
import type { ChatRequest } from '../schemas.js';
import type { ResponsesInputItem, ResponsesRequest } from './schema.js';
import type { UnsupportedFeature } from './to-chat.js';
import type { ResponseObject } from './types.js';

export interface ResponsesTurn {
  /** The request as the client sent it, validated. */
  request: ResponsesRequest;
  /** The conversation `previous_response_id` continues (earlier input and output items), or []. */
  previous: ResponsesInputItem[];
  /** The chat translation as parsed: a governance stage that replaced it (a template, safe mode) keeps the request translated (native.ts). */
  chat: ChatRequest;
  /** What chat cannot carry: only an upstream that speaks the Responses API may serve this request (native.ts). */
  unsupported?: UnsupportedFeature;
  /** The Response's id, fixed before the answer so a stream's first event carries it. */
  id: string;
  /** Unix seconds. */
  createdAt: number;
  /** Whether the last attempt sent the Responses request itself (true) or its chat translation; the audit's `api.upstream`. */
  sentNative?: boolean;
  /** background: true, put on the work queue: the reply is the queued Response itself (render.ts passes it through). */
  queued?: boolean;
  /** The Response the client got (a stream's final one, failed or not); what gets stored. */
  response?: ResponseObject;
}
