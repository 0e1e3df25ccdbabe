// What a pipeline is made of: named stage descriptors in three phases. The
// runner (run.ts) runs them; pipeline/index.ts declares them per endpoint.
// A stage is named by its descriptor, never by its function's name, so
// tracing and errors do not depend on how a function was written or bundled.
import type { ChatChunk } from '../api/schemas.js';
import type { AuditSink } from '../audit/transport/writer.js';
import type { GatewayError } from '../errors.js';
import type { SloTracker } from '../routing/slo.js';
import type { Endpoint, Reply, RequestContext, StageResult, TracedStage } from './context.js';

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
  readonly audit?: AuditSink;
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
 * How an ingress with an API of its own (Anthropic Messages) shows the
 * gateway's reply, which every stage sees in chat's shape, and its errors.
 * The server calls it as it writes; without one, the reply is chat's.
 */
export interface ReplyRenderer {
  /** A JSON reply's body as the app's API has it. */
  readonly json: (ctx: RequestContext, body: unknown) => unknown;
  /** A stream's chunks as that API's SSE text. Awaits the first chunk before yielding anything, so a failure before the first byte is still an HTTP error; a later failure ends with the API's own error event. */
  readonly stream: (ctx: RequestContext, chunks: AsyncIterable<ChatChunk>) => AsyncIterable<string>;
  /** An error's body in that API's shape (the status stays the gateway's). */
  readonly error: (ctx: RequestContext, err: GatewayError) => unknown;
}

/** One endpoint's whole request life. */
export interface Pipeline {
  readonly endpoint: Endpoint;
  /** The app's API's reply and error shape, when it is not chat's. */
  readonly render?: ReplyRenderer;
  readonly request: readonly RequestStage[];
  readonly reply: readonly ReplyStage[];
  readonly after: readonly AfterStage[];
}
