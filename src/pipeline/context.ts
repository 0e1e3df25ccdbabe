// The one object a request carries through the pipeline. Stages enrich it;
// the server and the audit read it when the request is over.
import type { McpUpstreams } from '../mcp/upstreams.js';
import type { ToolGateway } from '../mcp/tool-gateway.js';
import type { IncomingHttpHeaders } from 'node:http';
import type { ChatChunk, ChatRequest, EmbeddingsRequest, Usage } from '../api/schemas.js';
import type { CompiledConfig, CompiledModel, KeyInfo } from '../config/compile.js';
import type { GatewayError, UpstreamErrorClass } from '../errors.js';
import { CancelToken, cancelOf, type Cancel } from '../providers/cancel.js';
import { clientFamily } from '../api/client-family.js';
import type { Deployment, NativeRequest } from '../providers/types.js';
import type { ApprovalStore } from '../policy/approvals.js';
import type { AdmissionControl } from '../admission/control.js';
import type { Priority } from '../admission/gate.js';
import type { BudgetHold, BudgetServices } from '../budget/types.js';
import type { CacheOutcome, CacheService } from '../cache/service.js';
import type { PolicyOutcome } from '../policy/outcome.js';
import type { HealthRegistry } from '../routing/health.js';
import type { RedisStore } from '../stores/redis.js';
import type { Logger } from '../telemetry/logger.js';
import type { Metrics } from '../telemetry/metrics.js';
import type { StreamAssembler } from '../api/assemble.js';
import type { PromptUse, ShadowPlan } from '../prompts/types.js';
import type { PendingChatStore, PendingEmbeddings } from '../cache/pending.js';
import type { ResponsesStore } from '../api/responses/store.js';
import type { ResponsesTurn } from '../api/responses/turn.js';
import type { ClientFamily } from '../api/client-family.js';
import type { QueueService } from '../queue/types.js';
import type { FilesService } from '../files/types.js';

/** Long-lived parts of the running gateway that stages use. */
export interface Services {
  health: HealthRegistry;
  metrics: Metrics;
  logger: Logger;
  /** Present when several replicas share state (redis.url is set). */
  redis: RedisStore | undefined;
  approvals: ApprovalStore;
  budget: BudgetServices;
  /** Response and embeddings cache; absent where nothing is cached (the CLI). */
  cache?: CacheService;
  /** Prompt templates: shadow runs; absent where none run (the CLI). */
  prompts?: PromptServices;
  /** Admission gates (global, per deployment); absent where nothing is admitted (the CLI). */
  admission?: AdmissionControl;
  /** Upstream MCP servers behind /mcp; absent where none are served (the CLI). */
  mcp?: McpUpstreams;
  /** Stored responses (POST /v1/responses with store); absent where none are kept (the CLI). */
  responses?: ResponsesStore;
  /** Governance of MCP tool calls: audit sink, executor of approved calls, run budgets (mcp/govern.ts). */
  toolGateway: ToolGateway;
  /** The durable work queue: batch lines, background responses (src/queue); absent in the CLI. */
  queue?: QueueService;
  /** Batch input and output files (the Files API), in a local folder or an S3-compatible bucket. */
  files: FilesService;
}

/** Prompt templates' long-lived part (prompts/services.ts). */
export interface PromptServices {
  shadow: ShadowRunner;
}

/**
 * Runs a pin's shadow version beside sampled live requests (prompts/shadow.ts).
 * Declared here, not there, because it takes the context: the context module
 * imports no stage module, so nothing it names can import it back.
 */
export interface ShadowRunner {
  /** Called once the live reply has been sent. */
  afterLive(live: RequestContext, plan: ShadowPlan): void;
  /** Waits for queued and running shadow runs for up to `ms`, then aborts what is left. */
  drain(ms: number): Promise<void>;
  /** Queued plus running. */
  pending(): number;
}

/** This request's trace (telemetry/tracing.ts makes it); declared here for the same reason as ShadowRunner. */
export interface RequestTrace {
  readonly traceId: string;
  /** The request's server span: audit records (and their OTLP log copies) link to it. */
  readonly spanId: string;
  /** Runs a pipeline stage, in a child span when it is one worth tracing. */
  stage(stage: TracedStage, ctx: RequestContext): StageResult;
  /** A client span for one upstream attempt; `run` makes it current so adapters can propagate it. */
  attempt(deployment: Deployment, info: { retry: number; fallback: boolean; degraded: boolean }): AttemptSpan;
  end(ctx: RequestContext, clientDisconnected: boolean): void;
}

export interface AttemptSpan {
  run<T>(fn: () => T): T;
  end(attempt: Attempt): void;
}

export type Endpoint = 'chat' | 'embeddings' | 'messages' | 'count_tokens';

/**
 * The API the client spoke, which the audit's `endpoint` and the metrics
 * record. Stages read `endpoint`, the internal shape the request was parsed
 * into: a Responses request is a chat request inside (endpoint 'chat'); a
 * Messages request keeps its own endpoint ('messages', 'count_tokens') and
 * stages that govern chat key on `ctx.chat`, not on endpoint === 'chat'.
 */
export type Ingress = Endpoint | 'responses';

export interface Attempt {
  deployment: string;
  provider: string;
  /** Upstream HTTP status, when one came back. */
  status?: number;
  errorClass?: UpstreamErrorClass;
  code?: string;
  /** When it started, in ms after the request arrived. */
  startMs?: number;
  latencyMs: number;
  /** 0 for the first try at a deployment, then 1, 2... */
  retry: number;
  /** Tried because the ones before it failed. */
  fallback: boolean;
  degraded?: boolean;
}

export interface RequestEvent {
  stage: string;
  [detail: string]: unknown;
}

export interface RequestContext {
  readonly id: string;
  readonly endpoint: Endpoint;
  /** The API the client spoke (audit `endpoint`, metrics `endpoint` label). */
  readonly ingress: Ingress;
  /** The client's user-agent family, low cardinality (audit, lanegate_client_requests_total). */
  readonly client: ClientFamily;
  /** The config this request started with; a reload does not change it. */
  readonly config: CompiledConfig;
  readonly services: Services;
  /** Wall-clock start, for records. */
  readonly time: number;
  /** Monotonic start (performance.now()), for durations. */
  readonly startedAt: number;
  readonly headers: IncomingHttpHeaders;
  /** Cancelled when the client goes away or a run limit ends the request. */
  readonly cancel: Cancel;
  /** `cancel` as an AbortSignal, made on first use. */
  readonly signal: AbortSignal;
  /** Reads and parses the JSON body; supplied by the server. */
  readonly readBody: () => Promise<unknown>;
  /** Ends the request (the client left, a run limit): cancels `cancel` with this reason. */
  abort(reason: Error): void;
  /** Run when the request is over, whatever happened (before the after stages). */
  readonly cleanups: Array<() => void>;
  /** Set by the gateway for its own requests (evals, shadow runs), never by anything a client sends: any prompt version, no shadows of their own. */
  readonly internal: 'eval' | 'shadow' | undefined;

  key?: KeyInfo;
  chat?: ChatRequest;
  embeddings?: EmbeddingsRequest;
  /**
   * The request in the API the app spoke, for upstreams that speak it too (an
   * Anthropic Messages request to an Anthropic upstream), kept governed beside
   * `chat`: stages govern `chat`; the ingress carries their decisions over.
   */
  native?: NativeRequest;
  /** Anthropic Messages ingress: what the translation to chat could not carry. */
  messages?: MessagesIngress;
  stream: boolean;
  /** The model (or route) name the app asked for. */
  requestedModel?: string;
  /** The data lane the request runs in. */
  lane?: string;
  /** What the lane policy decided, for the response guard, audit and explain. */
  policy?: PolicyOutcome;
  /** Which route and rule chose the model; for plain model names, route = model. */
  route?: { name: string; rule: string | undefined; model: string };
  /** Prompt tokens, once something needed them counted. */
  promptTokens?: number;
  model?: CompiledModel;
  /** Answered by the safe-mode model because every candidate was unavailable. */
  degraded?: boolean;
  /** Deployments to try, in order. */
  candidates: Deployment[];
  /** The deployment that answered. */
  deployment?: Deployment;
  attempts: Attempt[];
  usage?: Usage;
  /** What it cost, priced from the provider's usage. */
  cost?: { nano: number; usd: number; priced: boolean };
  /** Budget reservation to settle when the request is over. */
  budget?: BudgetHold;
  /** Run limit: tool calls one answer may carry. */
  maxToolCalls?: number;
  /** Time spent waiting in admission queues so far, ms; all gates together get admission.queue_timeout_ms. */
  queueWaitMs: number;
  /** Set by the gateway for its own requests (shadow runs wait at low); otherwise the client's x-gateway-priority or metadata.priority decides. */
  readonly priority: Priority | undefined;
  timings: { firstByteMs?: number; totalMs?: number };
  events: RequestEvent[];
  /** Headers stages want on the response. */
  responseHeaders: Record<string, string>;
  /** The reply once a provider answered; later stages may transform it. */
  reply?: Reply;
  status?: number;
  error?: GatewayError;
  /** What the response cache did: hit, miss or bypass, and why. */
  cache?: CacheOutcome;
  /** The request body as received; kept only while the audit trail is on (full bodies, hashes). */
  rawBody?: Buffer;
  /** The JSON reply's text exactly as sent (JSON replies only). */
  responseText?: string;
  /** A streamed answer put back together once, as sent (api/assemble.ts): the audit record, the cache entry and the trace read it. Only while one of them needs it. */
  assembled?: StreamAssembler;
  /** This request's trace (only when OpenTelemetry is configured). */
  trace?: RequestTrace;
  /** The prompt template and version rendered into the request, if any. */
  prompt?: PromptUse;
  /** The audit trail's intent for this request, written once before its answer's first byte (server/handle.ts): a crash then cannot lose the record unseen. */
  auditIntent?: Promise<void> | null;
  /**
   * Writes the audit intent now (server/handle.ts sets it). The chat dispatch
   * calls it as a stream's first upstream call starts, so the intent's write
   * overlaps the wait for the provider instead of following the first chunk.
   */
  promiseAudit?: () => void;
  /** The global admission slot this request holds; the after phase gives it back. */
  admissionSlot?: () => void;
  /** A chat cache miss: what to store once the answer is complete (cache stages). */
  chatCache?: PendingChatStore;
  /** Settles the single flight this request leads (the cache lookup); the after phase settles it whatever happened. */
  cacheFlight?: (value: string | undefined) => void;
  /** An embeddings batch with misses: hits to merge back, vectors to store (cache stages). */
  embeddingsCache?: PendingEmbeddings;
  /** A sampled shadow run to start once the reply is out (render stage, after phase). */
  shadowPlan?: ShadowPlan;
  /** A Responses API request: the request as parsed, the conversation it continues, the Response sent (api/responses). */
  responses?: ResponsesTurn;
  /** Work from the durable queue (a batch line, a background response): whose identity it runs with, what it belongs to (src/queue). */
  readonly queued: QueuedWork | undefined;
}

/** What the queue worker tells the pipeline about a line it runs: set by the gateway, never by a client. */
export interface QueuedWork {
  kind: 'batch' | 'response';
  /** The batch id, or the background response's id. */
  owner: string;
  /** The key the work was created with; it runs with that key's identity. */
  keyId: string;
}

/** What the Messages ingress keeps about its request (api/messages/ingress.ts). */
export interface MessagesIngress {
  /** The request's `cache_control` markers, which a chat upstream cannot take (logged and counted when the request goes out translated); budgets reserve its prompt at the cache-write rate when there are any. */
  droppedCacheMarkers: number;
  /** The app's own `anthropic-version` / `anthropic-beta`, for an Anthropic upstream. */
  anthropicHeaders: Record<string, string>;
}

export type Reply =
  | {
      kind: 'json';
      status: number;
      body: unknown;
      /**
       * `body`'s JSON text as the upstream sent it (`ChatAnswer.text`): the
       * server sends these bytes instead of serialising `body` again. A reply
       * stage that changes `body` drops it (the guard restoring a redaction or
       * judging a tool call, the run limit cutting tool calls); a renderer
       * (Responses, Messages) never uses it.
       */
      text?: string | undefined;
    }
  | { kind: 'stream'; chunks: AsyncIterable<ChatChunk>; includeUsage: boolean };

/** What a request stage returns: nothing (go on) or a reply (a cache hit ends the phase), at once or later. */
export type StageResult = void | Reply | Promise<void | Reply>;

/** What tracing needs of a request stage; pipeline/stage.ts declares the whole descriptor. */
export interface TracedStage {
  /** The child span it runs in when the request is traced; cheap steps have none. */
  readonly span?: string;
  readonly run: (ctx: RequestContext) => StageResult;
}

export interface NewContext {
  id: string;
  endpoint: Endpoint;
  /** Default: the endpoint. */
  ingress?: Ingress;
  config: CompiledConfig;
  services: Services;
  headers: IncomingHttpHeaders;
  /** A caller's own cancellation to follow (shadow runs, evals); the server calls `abort` instead. */
  signal?: AbortSignal;
  /** Admission priority of a request the gateway makes itself, whatever its headers say. */
  priority?: Priority;
  /** A request the gateway makes itself: what for. */
  internal?: 'eval' | 'shadow';
  /** Work from the durable queue. */
  queued?: QueuedWork;
  readBody: () => Promise<unknown>;
}

/**
 * A class rather than an object literal so that every request context has one
 * shape from the start: stages fill in fields that already exist instead of
 * adding properties one by one, which keeps property access monomorphic and
 * saves V8 reallocating the object as it grows.
 */
class Context implements RequestContext {
  readonly id: string;
  readonly endpoint: Endpoint;
  readonly ingress: Ingress;
  readonly client: ClientFamily;
  readonly config: CompiledConfig;
  readonly services: Services;
  readonly time = Date.now();
  readonly startedAt = performance.now();
  readonly headers: IncomingHttpHeaders;
  readonly cancel: CancelToken;
  readonly readBody: () => Promise<unknown>;
  readonly cleanups: Array<() => void> = [];
  key: KeyInfo | undefined = undefined;
  chat: ChatRequest | undefined = undefined;
  embeddings: EmbeddingsRequest | undefined = undefined;
  native: NativeRequest | undefined = undefined;
  messages: MessagesIngress | undefined = undefined;
  stream = false;
  requestedModel: string | undefined = undefined;
  lane: string | undefined = undefined;
  policy: PolicyOutcome | undefined = undefined;
  route: RequestContext['route'] = undefined;
  promptTokens: number | undefined = undefined;
  model: CompiledModel | undefined = undefined;
  degraded: boolean | undefined = undefined;
  candidates: Deployment[] = [];
  deployment: Deployment | undefined = undefined;
  attempts: Attempt[] = [];
  usage: Usage | undefined = undefined;
  cost: RequestContext['cost'] = undefined;
  budget: BudgetHold | undefined = undefined;
  maxToolCalls: number | undefined = undefined;
  queueWaitMs = 0;
  readonly priority: Priority | undefined;
  timings: RequestContext['timings'] = { firstByteMs: undefined, totalMs: undefined };
  events: RequestEvent[] = [];
  responseHeaders: Record<string, string> = {};
  reply: Reply | undefined = undefined;
  status: number | undefined = undefined;
  error: GatewayError | undefined = undefined;
  cache: CacheOutcome | undefined = undefined;
  rawBody: Buffer | undefined = undefined;
  responseText: string | undefined = undefined;
  assembled: StreamAssembler | undefined = undefined;
  trace: RequestTrace | undefined = undefined;
  prompt: PromptUse | undefined = undefined;
  readonly internal: 'eval' | 'shadow' | undefined;
  /** null: promised, nothing to wait for (no intent log). */
  auditIntent: Promise<void> | null | undefined = undefined;
  promiseAudit: (() => void) | undefined = undefined;
  admissionSlot: (() => void) | undefined = undefined;
  chatCache: PendingChatStore | undefined = undefined;
  cacheFlight: ((value: string | undefined) => void) | undefined = undefined;
  embeddingsCache: PendingEmbeddings | undefined = undefined;
  shadowPlan: ShadowPlan | undefined = undefined;
  responses: ResponsesTurn | undefined = undefined;
  readonly queued: QueuedWork | undefined;

  constructor(init: NewContext) {
    this.id = init.id;
    this.endpoint = init.endpoint;
    this.ingress = init.ingress ?? init.endpoint;
    this.client = clientFamily(init.headers['user-agent']);
    this.config = init.config;
    this.services = init.services;
    this.headers = init.headers;
    this.readBody = init.readBody;
    this.priority = init.priority;
    this.internal = init.internal;
    this.queued = init.queued;
    this.cancel = init.signal ? cancelOf(init.signal) : new CancelToken();
  }

  get signal(): AbortSignal {
    return this.cancel.signal;
  }

  abort(reason: Error): void {
    this.cancel.abort(reason);
  }
}

export function createContext(init: NewContext): RequestContext {
  return new Context(init);
}
