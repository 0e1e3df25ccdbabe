// The upstream MCP servers of `mcp_servers:`: one connection each, with the
// gateway's own credentials. Remote servers are reached over Streamable HTTP
// and reconnected on demand; local ones are spawned over stdio, supervised
// (restarted with doubling backoff when they exit) and stopped on shutdown.
// Every request to an upstream is bounded in time (the server's timeout_ms)
// and in size (max_result_bytes): a dead, slow or misbehaving server costs
// the agent a prompt tool error, never a hang.
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import type { CallToolResult, GetPromptResult, Prompt, ReadResourceResult, Resource, Tool } from '@modelcontextprotocol/sdk/types.js';
import { GatewayError } from '../errors.js';
import type { ToolKey } from '../policy/tool-name.js';
import type { Logger } from '../telemetry/logger.js';
import type { Metrics } from '../telemetry/metrics.js';
import { isLocalServer, type McpServerConfig, type McpServersConfig } from './config.js';
import { namespacedKey, namespacedTool } from './names.js';
import { createPooledFetch, type PooledFetch } from './pooled-fetch.js';
import { loadClientSdk, loadedClientSdk, type ClientSdk } from './sdk.js';

/** One upstream tool as the agent sees it. */
export interface McpToolEntry {
  server: string;
  /** The upstream's own name, sent to it. */
  tool: string;
  /** `<server>__<tool>`, what the agent and the lane name it. */
  name: string;
  key: ToolKey;
  definition: Tool;
}

/** Runs one tool call on its upstream (also used to run approved calls later). */
export type McpToolExecutor = (server: string, tool: string, args: Record<string, unknown>, signal?: AbortSignal) => Promise<CallToolResult>;

export interface McpUpstreams {
  servers(): string[];
  /** Every server's tools; a server that cannot answer is left out (and logged), not fatal to the list. */
  tools(): Promise<McpToolEntry[]>;
  /** The tool a called name (in canonical form) names, if any server lists it. */
  findTool(key: ToolKey): Promise<McpToolEntry | undefined>;
  callTool: McpToolExecutor;
  listResources(server: string, signal?: AbortSignal): Promise<Resource[]>;
  readResource(server: string, uri: string, signal?: AbortSignal): Promise<ReadResourceResult>;
  listPrompts(server: string, signal?: AbortSignal): Promise<Prompt[]>;
  getPrompt(server: string, name: string, args: Record<string, string> | undefined, signal?: AbortSignal): Promise<GetPromptResult>;
  /** Stops local servers and closes connections; later calls fail. */
  close(): Promise<void>;
}

export interface McpUpstreamsOptions {
  servers: McpServersConfig;
  logger: Logger;
  metrics: Metrics;
  /** How long a server's tool list is reused before it is asked again (it also is on reconnect and list_changed). */
  toolsTtlMs?: number;
}

const VERSION = '1.0.0';
// A process that stayed up this long has recovered: its next crash restarts it after the shortest delay again.
const STABLE_AFTER_MS = 30_000;
// How long tool lists leave out a server whose listing failed before asking it again (a reconnect asks at once).
const LIST_RETRY_MS = 5_000;

export function createMcpUpstreams(o: McpUpstreamsOptions): McpUpstreams {
  const connections = new Map<string, Connection>();
  for (const [name, config] of Object.entries(o.servers)) connections.set(name, new Connection(name, config, o));
  // Local servers start with the gateway, so the first call does not pay their start-up.
  for (const c of connections.values()) if (c.local) c.start();

  const connection = (server: string): Connection => {
    const c = connections.get(server);
    if (!c) throw new GatewayError('not_found', `No MCP server "${server}" is configured.`);
    return c;
  };

  async function tools(): Promise<McpToolEntry[]> {
    const lists = await Promise.all([...connections.values()].map((c) => c.tools()));
    return lists.flat();
  }

  return {
    servers: () => [...connections.keys()],
    tools,
    async findTool(key) {
      for (const c of connections.values()) {
        if (!key.startsWith(c.prefix)) continue;
        return (await c.tools()).find((t) => t.key === key);
      }
      return undefined;
    },
    callTool: (server, tool, args, signal) => connection(server).callTool(tool, args, signal),
    listResources: (server, signal) => connection(server).listResources(signal),
    readResource: (server, uri, signal) => connection(server).readResource(uri, signal),
    listPrompts: (server, signal) => connection(server).listPrompts(signal),
    getPrompt: (server, name, args, signal) => connection(server).getPrompt(name, args, signal),
    async close() {
      await Promise.all([...connections.values()].map((c) => c.close()));
    },
  };
}

type Operation = 'tools/list' | 'tools/call' | 'resources/list' | 'resources/read' | 'prompts/list' | 'prompts/get';

class Connection {
  readonly local: boolean;
  readonly prefix: string;
  private client: Client | undefined;
  private connecting: Promise<Client> | undefined;
  private closed = false;
  private restartDelay: number;
  private restartTimer: NodeJS.Timeout | undefined;
  private startedAt = 0;
  private toolList: { at: number; entries: McpToolEntry[] } | undefined;
  /** When listing last failed: a server that is down is not asked again (and waited for) by every tools/list. */
  private listFailedAt = 0;
  /** Calls in flight on the current connection: a broken connection fails them at once instead of at their timeout. */
  private readonly inflight = new Set<AbortController>();
  /** Why the connection last broke, for the message of the calls it failed. */
  private fault: string | undefined;
  /** A remote server's keep-alive connections (pooled-fetch.ts). */
  private http: PooledFetch | undefined;

  constructor(
    readonly name: string,
    private readonly config: McpServerConfig,
    private readonly o: McpUpstreamsOptions,
  ) {
    this.local = isLocalServer(config);
    this.prefix = namespacedKey(name, '');
    this.restartDelay = isLocalServer(config) ? config.restart_min_ms : 0;
  }

  start(): void {
    this.connect().catch(() => {
      // Logged where it failed; the supervisor's restart (or the next call) tries again.
    });
  }

  private connect(): Promise<Client> {
    if (this.closed) return Promise.reject(new GatewayError('upstream_unavailable', `MCP server "${this.name}" is stopped.`));
    if (this.client) return Promise.resolve(this.client);
    // A local server waiting out its restart backoff is not spawned again by every call.
    if (this.restartTimer) return Promise.reject(new GatewayError('upstream_unavailable', `MCP server "${this.name}" is restarting after it exited.`));
    this.connecting ??= this.open().finally(() => (this.connecting = undefined));
    return this.connecting;
  }

  private async open(): Promise<Client> {
    const sdk = await loadClientSdk();
    const client = new sdk.Client({ name: 'lanegate', version: VERSION });
    const transport = this.transport(sdk);
    let settled = false;
    const broken = (why: string) => {
      if (this.client !== client) return;
      this.client = undefined;
      this.fault = why;
      for (const c of this.inflight) c.abort();
      void client.close().catch(() => {});
      if (this.local && !this.closed) this.scheduleRestart();
    };
    client.onclose = () => {
      if (!settled) return;
      this.o.logger.warn({ mcpServer: this.name }, 'MCP server connection closed');
      broken(this.local ? 'the server process exited' : 'the connection closed');
    };
    client.onerror = (err) => {
      if (!settled) return;
      // A remote stream that breaks (the server died mid-answer) leaves its request waiting; fail it now.
      this.o.logger.warn({ mcpServer: this.name, err: String(err) }, 'MCP server connection failed');
      broken(this.fault ?? 'the connection failed');
    };
    client.setNotificationHandler(sdk.types.ToolListChangedNotificationSchema, () => {
      this.toolList = undefined;
    });
    try {
      await client.connect(transport, { timeout: this.config.connect_timeout_ms });
    } catch (err) {
      void client.close().catch(() => {});
      this.o.logger.warn({ mcpServer: this.name, err: String(err) }, 'MCP server could not be reached');
      if (this.local && !this.closed) this.scheduleRestart();
      throw new GatewayError('upstream_unavailable', `MCP server "${this.name}" could not be reached.`, { cause: err });
    }
    settled = true;
    if (this.closed) {
      await client.close().catch(() => {});
      throw new GatewayError('upstream_unavailable', `MCP server "${this.name}" is stopped.`);
    }
    this.client = client;
    this.fault = undefined;
    this.listFailedAt = 0;
    // A new connection (a restarted process) may serve other tools.
    this.toolList = undefined;
    this.startedAt = Date.now();
    this.o.logger.info({ mcpServer: this.name, local: this.local }, 'MCP server connected');
    return client;
  }

  private transport(sdk: ClientSdk): Transport {
    const c = this.config;
    if (isLocalServer(c)) {
      return new sdk.BoundedStdioTransport({
        command: c.command,
        args: c.args,
        // The SDK's minimal environment (PATH, HOME...) plus the server's own: never the gateway's secrets.
        env: { ...sdk.getDefaultEnvironment(), ...c.env },
        cwd: c.cwd,
        // A message is one line: bound it while it comes in, as the HTTP answer is.
        maxLineBytes: c.max_result_bytes + FRAMING_ALLOWANCE,
        onExceeded: () => (this.fault = `its answer exceeded ${c.max_result_bytes} bytes`),
        onStderr: (chunk) => this.o.logger.debug({ mcpServer: this.name, stderr: chunk.toString('utf8').slice(0, 2000) }, 'MCP server stderr'),
      });
    }
    const url = new URL(c.url);
    // One pool per connection, closed with it: a reconnect starts from fresh sockets.
    void this.http?.close().catch(() => {});
    this.http = createPooledFetch({
      url,
      // The SDK reads a whole message before it can be checked: bound it while it comes in.
      limit: c.max_result_bytes + FRAMING_ALLOWANCE,
      onExceeded: () => (this.fault = `its answer exceeded ${c.max_result_bytes} bytes`),
      connectTimeoutMs: c.connect_timeout_ms,
    });
    return new sdk.StreamableHTTPClientTransport(url, {
      requestInit: { headers: c.headers },
      fetch: this.http.fetch,
      // The gateway reconnects on its own terms (the next call); the SDK's retries would hold a failed call open.
      reconnectionOptions: { initialReconnectionDelay: 1000, maxReconnectionDelay: 1000, reconnectionDelayGrowFactor: 1, maxRetries: 0 },
    });
  }

  private scheduleRestart(): void {
    if (this.restartTimer || this.closed || !isLocalServer(this.config)) return;
    const cfg = this.config;
    if (this.startedAt && Date.now() - this.startedAt > STABLE_AFTER_MS) this.restartDelay = cfg.restart_min_ms;
    const delay = this.restartDelay;
    this.restartDelay = Math.min(cfg.restart_max_ms, delay * 2);
    this.o.metrics.mcpRestarts.labels(this.name).inc();
    this.o.logger.warn({ mcpServer: this.name, inMs: delay }, 'MCP server restarting');
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      this.start();
    }, delay);
    this.restartTimer.unref();
  }

  async tools(): Promise<McpToolEntry[]> {
    const ttl = this.o.toolsTtlMs ?? 30_000;
    if (this.toolList && Date.now() - this.toolList.at < ttl) return this.toolList.entries;
    if (Date.now() - this.listFailedAt < LIST_RETRY_MS) return this.toolList?.entries ?? [];
    try {
      const entries: McpToolEntry[] = [];
      const seen = new Set<ToolKey>();
      let cursor: string | undefined;
      // Pages are followed up to a bound: a server that keeps paging is misbehaving.
      for (let page = 0; page < 50; page++) {
        const r = await this.request('tools/list', (client, options) => client.listTools(cursor ? { cursor } : undefined, options));
        for (const definition of r.tools) {
          const key = namespacedKey(this.name, definition.name);
          // Two upstream names that fold together would make a lane rule about one a rule about both.
          if (seen.has(key)) {
            this.o.logger.warn({ mcpServer: this.name, tool: definition.name }, 'MCP tool hidden: its name folds into another tool of the same server');
            continue;
          }
          seen.add(key);
          entries.push({ server: this.name, tool: definition.name, name: namespacedTool(this.name, definition.name), key, definition });
        }
        cursor = r.nextCursor;
        if (!cursor) break;
      }
      this.toolList = { at: Date.now(), entries };
      return entries;
    } catch (err) {
      this.listFailedAt = Date.now();
      this.o.logger.warn({ mcpServer: this.name, err: String(err) }, 'MCP server tools could not be listed; they are left out');
      return this.toolList?.entries ?? [];
    }
  }

  callTool(tool: string, args: Record<string, unknown>, signal?: AbortSignal): Promise<CallToolResult> {
    return this.request('tools/call', (client, options) => client.callTool({ name: tool, arguments: args }, undefined, options) as Promise<CallToolResult>, signal);
  }

  async listResources(signal?: AbortSignal): Promise<Resource[]> {
    return (await this.request('resources/list', (client, options) => client.listResources(undefined, options), signal)).resources;
  }

  readResource(uri: string, signal?: AbortSignal): Promise<ReadResourceResult> {
    return this.request('resources/read', (client, options) => client.readResource({ uri }, options), signal);
  }

  async listPrompts(signal?: AbortSignal): Promise<Prompt[]> {
    return (await this.request('prompts/list', (client, options) => client.listPrompts(undefined, options), signal)).prompts;
  }

  getPrompt(name: string, args: Record<string, string> | undefined, signal?: AbortSignal): Promise<GetPromptResult> {
    return this.request('prompts/get', (client, options) => client.getPrompt({ name, arguments: args }, options), signal);
  }

  /**
   * One request to the upstream, bounded: connecting and answering within the
   * server's timeout, the answer within max_result_bytes, a broken connection
   * failing it at once. Failures become gateway errors; upstream messages are
   * not forwarded (they may carry anything).
   */
  private async request<T>(operation: Operation, fn: (client: Client, options: { signal: AbortSignal; timeout: number }) => Promise<T>, signal?: AbortSignal): Promise<T> {
    const started = performance.now();
    const timeoutMs = this.config.timeout_ms;
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), timeoutMs);
    const onAbort = () => controller.abort();
    signal?.addEventListener('abort', onAbort, { once: true });
    let outcome = 'ok';
    try {
      const client = await withAbort(this.connect(), controller.signal);
      this.inflight.add(controller);
      try {
        const result = await fn(client, { signal: controller.signal, timeout: timeoutMs });
        // A fault is about the answer it broke, not the ones that come after it.
        this.fault = undefined;
        const size = Buffer.byteLength(JSON.stringify(result));
        if (size > this.config.max_result_bytes) {
          outcome = 'too_large';
          throw new GatewayError('upstream_error', `MCP server "${this.name}" answered ${operation} with ${size} bytes, over its limit of ${this.config.max_result_bytes}; the answer was refused.`);
        }
        return result;
      } finally {
        this.inflight.delete(controller);
      }
    } catch (err) {
      if (err instanceof GatewayError) {
        if (outcome === 'ok') outcome = err.code === 'upstream_unavailable' ? 'unavailable' : 'error';
        throw err;
      }
      const mapped = this.mapError(operation, err, controller.signal, signal, timeoutMs);
      outcome = mapped.code === 'upstream_timeout' ? 'timeout' : mapped.code === 'upstream_unavailable' ? 'unavailable' : mapped.code === 'client_disconnected' ? 'cancelled' : 'error';
      throw mapped;
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      this.o.metrics.mcpUpstreamDuration.labels(this.name, operation, outcome).observe((performance.now() - started) / 1000);
    }
  }

  private mapError(operation: Operation, err: unknown, own: AbortSignal, caller: AbortSignal | undefined, timeoutMs: number): GatewayError {
    const name = this.name;
    // An McpError can only come from the SDK, so it is loaded by then.
    const types = loadedClientSdk()?.types;
    const McpError = types?.McpError;
    const isMcpError = (e: unknown): e is InstanceType<NonNullable<typeof McpError>> => McpError !== undefined && e instanceof McpError;
    if (caller?.aborted) return new GatewayError('client_disconnected', `The ${operation} request to MCP server "${name}" was cancelled.`, { cause: err });
    if (this.fault && own.aborted) return new GatewayError('upstream_unavailable', `MCP server "${name}" failed during ${operation}: ${this.fault}.`, { cause: err });
    if (own.aborted || (isMcpError(err) && err.code === (types!.ErrorCode.RequestTimeout as number))) {
      return new GatewayError('upstream_timeout', `MCP server "${name}" did not answer ${operation} within ${timeoutMs} ms.`, { cause: err });
    }
    if (isMcpError(err)) {
      // The upstream's own JSON-RPC error (unknown tool, bad params): its code is safe to name, its text is not ours to forward.
      if (err.code === (types!.ErrorCode.ConnectionClosed as number)) return new GatewayError('upstream_unavailable', `MCP server "${name}" closed the connection during ${operation}.`, { cause: err });
      return new GatewayError('upstream_error', `MCP server "${name}" refused ${operation} (JSON-RPC error ${err.code}).`, { cause: err });
    }
    // Anything else is a broken transport or an answer that is not valid MCP.
    const invalid = err instanceof Error && (err.name === 'ZodError' || /invalid|parse|schema/i.test(err.message));
    if (invalid) return new GatewayError('upstream_error', `MCP server "${name}" gave an invalid answer to ${operation}.`, { cause: err });
    return new GatewayError('upstream_unavailable', `MCP server "${name}" could not be reached for ${operation}${this.fault ? `: ${this.fault}` : ''}.`, { cause: err });
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.restartTimer) clearTimeout(this.restartTimer);
    this.restartTimer = undefined;
    for (const c of this.inflight) c.abort();
    const client = this.client ?? (await this.connecting?.catch(() => undefined));
    this.client = undefined;
    await client?.close().catch(() => {});
    await this.http?.close().catch(() => {});
  }
}

// JSON-RPC and SSE framing around a result.
const FRAMING_ALLOWANCE = 64 * 1024;

function withAbort<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(new Error('aborted'));
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(new Error('aborted'));
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e instanceof Error ? e : new Error(String(e)));
      },
    );
  });
}
