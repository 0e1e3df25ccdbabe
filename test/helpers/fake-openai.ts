// A small OpenAI-compatible upstream for tests, on a free port, with scripted
// faults. It answers deterministically so tests can assert exact output.
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { writePaced } from './write-paced.js';

export type Fault =
  /** With delayMs, the status comes after that wait (a failure that holds its connection a while). */
  | { status: number; body?: unknown; headers?: Record<string, string>; delayMs?: number }
  /** 200 with exactly this body (huge, deeply nested or malformed answers). */
  | { answer: string }
  /** 200 as a stream of exactly these `data:` events (no [DONE] unless given). */
  | { events: string[] }
  | { delayMs: number }
  /** Answers as usual once this settles: holds the call exactly as long as the test needs (a slot held upstream, however slow the machine). */
  | { holdUntil: Promise<unknown> }
  | { dropSocket: true }
  | { stallAfterHeaders: true }
  | { breakStreamAfterChunks: number }
  /** Sends this many stream chunks (the first is the role chunk), then nothing more, keeping the connection open. */
  | { stallAfterChunks: number }
  | { garbage: true }
  | { omitUsage: true }
  | { chunkDelayMs: number }
  /** The reply calls exactly these tools, whatever the request offered (a model going off script). */
  | { toolCalls: Array<{ name: string; arguments?: string }>; stallAfterChunks?: number };

export interface RecordedCall {
  path: string;
  method: string;
  headers: IncomingMessage['headers'];
  body: Record<string, unknown>;
  rawBody: string;
}

export interface FakeOpenAI {
  url: string;
  calls: RecordedCall[];
  /** Responses whose connection closed before the response was finished. */
  aborted: number;
  /** Faults apply to the next requests, one fault per request, in order. */
  script(...faults: Fault[]): void;
  /** A fault applied to every request until cleared. */
  always(fault: Fault | undefined): void;
  close(): Promise<void>;
}

interface ChatBody {
  model: string;
  messages: Array<{ role: string; content: unknown }>;
  stream?: boolean;
  stream_options?: { include_usage?: boolean };
  tools?: Array<{ function: { name: string } }>;
  n?: number;
}

export async function startFakeOpenAI(): Promise<FakeOpenAI> {
  const calls: RecordedCall[] = [];
  const queue: Fault[] = [];
  let standing: Fault | undefined;
  const sockets = new Set<import('node:net').Socket>();

  const server: Server = createServer(async (req, res) => {
    let raw = '';
    for await (const chunk of req) raw += chunk;
    let body: Record<string, unknown>;
    try {
      body = raw ? JSON.parse(raw) : {};
    } catch {
      body = {};
    }
    calls.push({ path: req.url ?? '', method: req.method ?? '', headers: req.headers, body, rawBody: raw });
    const fault = queue.shift() ?? standing;
    res.on('close', () => {
      if (!res.writableFinished) fake.aborted++;
    });
    await handle(req, res, body, fault);
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;

  const fake: FakeOpenAI = {
    url: `http://127.0.0.1:${port}`,
    calls,
    aborted: 0,
    script: (...faults) => queue.push(...faults),
    always: (fault) => (standing = fault),
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  return fake;
}

async function handle(req: IncomingMessage, res: ServerResponse, body: Record<string, unknown>, fault: Fault | undefined): Promise<void> {
  if (fault && 'delayMs' in fault) await new Promise((r) => setTimeout(r, fault.delayMs));
  if (fault && 'holdUntil' in fault) await fault.holdUntil;
  if (fault && 'dropSocket' in fault) {
    req.socket.destroy();
    return;
  }
  if (fault && 'status' in fault) {
    res.writeHead(fault.status, { 'content-type': 'application/json', ...fault.headers });
    res.end(JSON.stringify(fault.body ?? { error: { message: 'upstream says no: sk-upstream-internal-detail', type: 'server_error' } }));
    return;
  }
  if (fault && 'garbage' in fault) {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end('<html>not json</html>');
    return;
  }
  if (fault && 'answer' in fault) {
    res.writeHead(200, { 'content-type': 'application/json' });
    return writePaced(res, fault.answer);
  }
  if (fault && 'events' in fault) {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    return writePaced(res, fault.events.map((data) => `data: ${data}\n\n`).join(''));
  }
  if (req.url?.endsWith('/embeddings')) return embeddings(res, body);
  if (req.url?.endsWith('/responses')) return responses(req, res, body, fault);
  if (!req.url?.endsWith('/chat/completions')) {
    res.writeHead(404, { 'content-type': 'application/json' });
    res.end('{"error":{"message":"not found"}}');
    return;
  }
  const chat = body as unknown as ChatBody;
  const answer = fault && 'toolCalls' in fault ? scriptedCalls(fault.toolCalls) : answerFor(chat);
  const usage = { prompt_tokens: 11, completion_tokens: answer.tokens, total_tokens: 11 + answer.tokens };
  const omitUsage = !!fault && 'omitUsage' in fault;
  if (!chat.stream) {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(
      JSON.stringify({
        id: 'chatcmpl-fake-1',
        object: 'chat.completion',
        created: 1_700_000_000,
        model: chat.model,
        choices: Array.from({ length: chat.n ?? 1 }, (_, index) => ({
          index,
          message: { role: 'assistant', content: answer.text, ...(answer.toolCalls.length > 0 ? { tool_calls: answer.toolCalls } : {}) },
          finish_reason: answer.toolCalls.length > 0 ? 'tool_calls' : 'stop',
        })),
        ...(omitUsage ? {} : { usage }),
        system_fingerprint: 'fp_fake',
        extra_upstream_field: 'kept',
      }),
    );
    return;
  }
  res.writeHead(200, { 'content-type': 'text/event-stream' });
  if (fault && 'stallAfterHeaders' in fault) return; // never sends a chunk
  const base = { id: 'chatcmpl-fake-1', object: 'chat.completion.chunk', created: 1_700_000_000, model: chat.model };
  const withUsage = chat.stream_options?.include_usage === true;
  const chunks: unknown[] = [{ ...base, choices: [{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null }] }];
  if (answer.text) for (const piece of answer.text.match(/\S+\s*/g) ?? []) chunks.push({ ...base, choices: [{ index: 0, delta: { content: piece }, finish_reason: null }] });
  for (const [index, { id, function: fn }] of answer.toolCalls.entries()) {
    chunks.push({ ...base, choices: [{ index: 0, delta: { tool_calls: [{ index, id, type: 'function', function: { name: fn.name, arguments: '' } }] }, finish_reason: null }] });
    const half = Math.floor(fn.arguments.length / 2);
    chunks.push({ ...base, choices: [{ index: 0, delta: { tool_calls: [{ index, function: { arguments: fn.arguments.slice(0, half) } }] }, finish_reason: null }] });
    chunks.push({ ...base, choices: [{ index: 0, delta: { tool_calls: [{ index, function: { arguments: fn.arguments.slice(half) } }] }, finish_reason: null }] });
  }
  chunks.push({ ...base, choices: [{ index: 0, delta: {}, finish_reason: answer.toolCalls.length > 0 ? 'tool_calls' : 'stop' }] });
  if (withUsage && !omitUsage) chunks.push({ ...base, choices: [], usage });
  const breakAfter = fault && 'breakStreamAfterChunks' in fault ? fault.breakStreamAfterChunks : Infinity;
  const stallAfter = (fault && 'stallAfterChunks' in fault ? fault.stallAfterChunks : undefined) ?? Infinity;
  for (const [i, chunk] of chunks.entries()) {
    if (i >= stallAfter) return; // the client, or its timeout, ends it
    if (i >= breakAfter) {
      req.socket.destroy();
      return;
    }
    const c = withUsage && (chunk as { usage?: unknown }).usage === undefined ? { ...(chunk as object), usage: null } : chunk;
    // CRLF line endings on purpose: the gateway's parser must accept them.
    if (res.destroyed) return;
    res.write(`data: ${JSON.stringify(c)}\r\n\r\n`);
    const delay = fault && 'chunkDelayMs' in fault ? fault.chunkDelayMs : 0;
    await new Promise((r) => (delay ? setTimeout(r, delay) : setImmediate(r)));
  }
  res.end('data: [DONE]\n\n');
}

function answerFor(chat: ChatBody) {
  const last = [...chat.messages].reverse().find((m) => m.role === 'user' || m.role === 'tool');
  const text = typeof last?.content === 'string' ? last.content : JSON.stringify(last?.content ?? '');
  if (chat.tools?.length && text.includes('use tool')) {
    // "use tool NAME args:{...}" picks the tool and its exact arguments
    const named = /use tool (\w+)/.exec(text)?.[1];
    const tool = chat.tools.find((t) => t.function.name === named) ?? chat.tools[0]!;
    // args64: hides the arguments from the gateway's detectors on the way in
    const b64At = text.indexOf('args64:');
    const argsAt = text.indexOf('args:');
    const args =
      b64At >= 0 ? Buffer.from(text.slice(b64At + 7), 'base64').toString('utf8') : argsAt >= 0 ? text.slice(argsAt + 5) : JSON.stringify({ query: text });
    return { text: null, tokens: 7, toolCalls: [{ id: 'call_fake_1', type: 'function' as const, function: { name: tool.function.name, arguments: args } }] };
  }
  const reply = `Hello from fake-openai: ${text}`;
  return { text: reply, tokens: reply.split(/\s+/).length, toolCalls: [] };
}

function scriptedCalls(calls: Array<{ name: string; arguments?: string }>) {
  const toolCalls = calls.map((c, i) => ({ id: `call_scripted_${i + 1}`, type: 'function' as const, function: { name: c.name, arguments: c.arguments ?? '{}' } }));
  return { text: null, tokens: 7, toolCalls };
}

function embeddings(res: ServerResponse, body: Record<string, unknown>): void {
  const input = body.input;
  const items: string[] = typeof input === 'string' ? [input] : Array.isArray(input) ? input.map((x) => (typeof x === 'string' ? x : JSON.stringify(x))) : [];
  const dims = typeof body.dimensions === 'number' ? body.dimensions : 4;
  const data = items.map((text, index) => {
    const vector = Array.from({ length: dims }, (_, i) => ((text.length + i) % 7) / 7);
    const embedding = body.encoding_format === 'base64' ? Buffer.from(Float32Array.from(vector).buffer).toString('base64') : vector;
    return { object: 'embedding', index, embedding };
  });
  const tokens = items.reduce((n, t) => n + t.split(/\s+/).length, 0);
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ object: 'list', data, model: body.model, usage: { prompt_tokens: tokens, total_tokens: tokens } }));
}

interface ResponsesBody {
  model: string;
  input?: string | Array<{ type?: string; role?: string; content?: unknown; output?: unknown }>;
  instructions?: string;
  tools?: Array<{ type: string; name?: string }>;
  stream?: boolean;
  previous_response_id?: string;
  reasoning?: { effort?: string; summary?: string };
}

// The Responses API, as an upstream that speaks it natively (OpenAI itself):
// hand-written here rather than built with the gateway's translators, so a
// mistake in those shows up against it instead of being mirrored.
async function responses(req: IncomingMessage, res: ServerResponse, body: Record<string, unknown>, fault: Fault | undefined): Promise<void> {
  const r = body as unknown as ResponsesBody;
  const items = typeof r.input === 'string' ? [{ role: 'user', content: r.input }] : (r.input ?? []);
  const last = [...items].reverse().find((i) => i.role === 'user' || i.type === 'function_call_output');
  const raw = last?.type === 'function_call_output' ? last.output : last?.content;
  const text = typeof raw === 'string' ? raw : JSON.stringify(raw ?? '');
  const fnTools = (r.tools ?? []).filter((t) => t.type === 'function' && t.name);
  const id = 'resp_fake_1';
  const usage = { input_tokens: 11, input_tokens_details: { cached_tokens: 0 }, output_tokens: 0, output_tokens_details: { reasoning_tokens: 0 }, total_tokens: 11 };
  let output: Array<Record<string, unknown>>;
  if (fnTools.length > 0 && text.includes('use tool')) {
    const named = /use tool (\w+)/.exec(text)?.[1];
    const name = fnTools.find((t) => t.name === named)?.name ?? fnTools[0]!.name!;
    const argsAt = text.indexOf('args:');
    const args = argsAt >= 0 ? text.slice(argsAt + 5) : JSON.stringify({ query: text });
    output = [{ type: 'function_call', id: 'fc_fake_1', call_id: 'call_fake_1', name, arguments: args, status: 'completed' }];
    usage.output_tokens = 7;
  } else {
    const reply = `Hello from fake-openai responses: ${text}`;
    output = [{ type: 'message', id: 'msg_fake_1', status: 'completed', role: 'assistant', content: [{ type: 'output_text', text: reply, annotations: [] }] }];
    usage.output_tokens = reply.split(/\s+/).length;
  }
  // Reasoning asked for: a reasoning item (summary and the encrypted state a later turn sends back) before the answer.
  if (r.reasoning) output.unshift({ type: 'reasoning', id: 'rs_fake_1', summary: [{ type: 'summary_text', text: `Reasoned about: ${text}` }], encrypted_content: 'gAAAAfakeEncrypted==' });
  usage.total_tokens = usage.input_tokens + usage.output_tokens;
  const response = {
    id, object: 'response', created_at: 1_700_000_000, status: 'completed', error: null, incomplete_details: null,
    instructions: r.instructions ?? null, model: r.model, output, parallel_tool_calls: true, previous_response_id: r.previous_response_id ?? null,
    temperature: null, top_p: null, tool_choice: 'auto', tools: r.tools ?? [], text: { format: { type: 'text' } }, truncation: 'disabled',
    usage, metadata: {}, extra_upstream_field: 'kept',
  };
  if (!r.stream) {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(response));
    return;
  }
  const inProgress = { ...response, status: 'in_progress', output: [], usage: null };
  const events: Array<Record<string, unknown>> = [{ type: 'response.created', response: inProgress }, { type: 'response.in_progress', response: inProgress }];
  output.forEach((item, output_index) => {
    if (item.type === 'message') {
      const full = (item.content as Array<{ text: string }>)[0]!.text;
      events.push({ type: 'response.output_item.added', output_index, item: { ...item, status: 'in_progress', content: [] } });
      events.push({ type: 'response.content_part.added', item_id: item.id, output_index, content_index: 0, part: { type: 'output_text', text: '', annotations: [] } });
      for (const delta of full.match(/\S+\s*/g) ?? []) events.push({ type: 'response.output_text.delta', item_id: item.id, output_index, content_index: 0, delta, logprobs: [] });
      events.push({ type: 'response.output_text.done', item_id: item.id, output_index, content_index: 0, text: full, logprobs: [] });
      events.push({ type: 'response.content_part.done', item_id: item.id, output_index, content_index: 0, part: { type: 'output_text', text: full, annotations: [] } });
    } else if (item.type === 'reasoning') {
      events.push({ type: 'response.output_item.added', output_index, item: { ...item, summary: [] } });
    } else {
      const args = item.arguments as string;
      events.push({ type: 'response.output_item.added', output_index, item: { ...item, arguments: '', status: 'in_progress' } });
      const half = Math.floor(args.length / 2);
      for (const delta of [args.slice(0, half), args.slice(half)]) events.push({ type: 'response.function_call_arguments.delta', item_id: item.id, output_index, delta });
      events.push({ type: 'response.function_call_arguments.done', item_id: item.id, output_index, name: item.name, arguments: args });
    }
    events.push({ type: 'response.output_item.done', output_index, item });
  });
  events.push({ type: 'response.completed', response });
  res.writeHead(200, { 'content-type': 'text/event-stream' });
  if (fault && 'stallAfterHeaders' in fault) return;
  const breakAfter = fault && 'breakStreamAfterChunks' in fault ? fault.breakStreamAfterChunks : Infinity;
  for (const [sequence_number, event] of events.entries()) {
    if (sequence_number >= breakAfter) {
      req.socket.destroy();
      return;
    }
    if (res.destroyed) return;
    res.write(`event: ${String(event.type)}\ndata: ${JSON.stringify({ ...event, sequence_number })}\n\n`);
    await new Promise((resolve) => setImmediate(resolve));
  }
  res.end();
}
