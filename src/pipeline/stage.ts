// What a pipeline is made of: named stage descriptors in three phases. The
// runner (run.ts) runs them; pipeline/index.ts declares them per endpoint.
// A stage is named by its descriptor, never by its function's name, so
// tracing and errors do not depend on how a function was written or bundled.
import type { ChatChunk } from '../api/schemas.js';
import type { AuditSink } from '../audit/transport/writer.js';
import type { GatewayError } from '../errors.js';
import type { SloTracker } from '../routing/slo.js';
import type { Endpoint, Ingress, Reply, RequestContext, StageResult, TracedStage } from './context.js';

export type JsonReply = Extract<Reply, { kind: 'json' }>;

/**
 * Up to a reply: enriches the context, ends the phase early with a reply (a
 * cache hit), or throws a GatewayError.
 */
export interface RequestStage extends TracedStage {
  readonly name: string;
  readonly run: (ctx: RequestContext) => StageResult;
}

/**
 * Every reply goes through these, a cache hit's and a stream's included.
 * `json` sees a JSON reply once; `stream` wraps a stream's chunks, and the
 * runner wraps in the declared order, so each chunk passes the stages in the
 * order they are listed. A stage without a part lets that kind through.
 */
export interface ReplyStage {
  readonly name: string;
  readonly json?: (ctx: RequestContext, reply: JsonReply) => void | Promise<void>;
  readonly stream?: (ctx: RequestContext, chunks: AsyncIterable<ChatChunk>) => AsyncIterable<ChatChunk>;
}

/** How the response ended, and where the after stages record it. */
export interface RequestEnd {
  /** The client left before the answer was complete. */
  readonly clientDisconnected: boolean;
  /** The audit trail and the SLO tracker: requests from the HTTP server record into them; the gateway's own do not. */
  readonly audit?: Pick<AuditSink, 'enabled' | 'write'>;
  readonly slo?: SloTracker;
}

/**
 * Once the response is over (sent, failed or abandoned), off the client's
 * path. A stage that returns a promise is not waited for by the client; the
 * stage itself logs its failure, so nothing is lost silently.
 */
export interface AfterStage {
  readonly name: string;
  readonly run: (ctx: RequestContext, end: RequestEnd) => void | Promise<void>;
}

/**
 * How an ingress that is not Chat Completions (Responses, Anthropic Messages)
 * gives the client its own API's shape. The pipeline's reply (chat, after
 * every reply stage) is turned into it as the server writes it, so the reply
 * stages, the audit's assembled answer and the cache all keep seeing chat.
 */
export interface Renderer {
  /** A JSON reply's body as the client gets it (a renderer passes a non-2xx body through or reshapes it). */
  json(ctx: RequestContext, reply: JsonReply): unknown;
  /**
   * A stream as SSE frames. The first frame comes only once the first chunk
   * did: a failure before it still throws, so the client gets an HTTP error.
   * A failure after it ends with the API's own error events, never a throw.
   */
  stream(ctx: RequestContext, chunks: AsyncIterable<ChatChunk>): AsyncIterable<string>;
  /** An error's body in that API's shape (the status stays the gateway's); without it, errors are OpenAI's. */
  error?(ctx: RequestContext, err: GatewayError): unknown;
}

/** One endpoint's whole request life. */
export interface Pipeline {
  /** The internal shape the request is parsed into, which the governance stages read. */
  readonly endpoint: Endpoint;
  /** The API the client speaks, when it is not the endpoint's own (ctx.ingress defaults to the endpoint). */
  readonly ingress?: Ingress;
  /** The client API's reply and error shape, when it is not chat's. */
  readonly render?: Renderer;
  readonly request: readonly RequestStage[];
  readonly reply: readonly ReplyStage[];
  readonly after: readonly AfterStage[];
}
