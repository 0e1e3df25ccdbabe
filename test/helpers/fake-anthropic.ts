// A small Anthropic Messages API upstream for tests, on a free port, with
// scripted faults. It answers deterministically so tests can assert exact
// output, and streams the same event sequence as the real API.
import { once } from 'node:events';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { writePaced } from './write-paced.js';

export type AnthropicFault =
  | { status: number; body?: unknown; headers?: Record<string, string> }
  | { delayMs: number }
  | { dropSocket: true }
  | { breakStreamAfterEvents: number }
  /** 200 with exactly this body (huge, deeply nested or malformed answers). */
  | { answer: string }
  /** 200 as a stream of exactly these `data:` events. */
  | { events: string[] };

export interface RecordedAnthropicCall {
  path: string;
  method: string;
  headers: IncomingMessage['headers'];
  body: Record<string, unknown>;
}

export interface FakeAnthropic {
  url: string;
  calls: RecordedAnthropicCall[];
  /** Responses whose connection closed before the response was finished. */
  aborted: number;
  /** Faults apply to the next requests, one fault per request, in order. */
  script(...faults: AnthropicFault[]): void;
  close(): Promise<void>;
}

interface Block {
  type: string;
  text?: string;
  content?: unknown;
}

interface MessagesBody {
  model?: string;
  system?: string | Block[];
  messages?: Array<{ role: string; content: string | Block[] }>;
  tools?: Array<{ name: string }>;
  max_tokens?: number;
  stream?: boolean;
  thinking?: { type?: string };
}

const ERROR_TYPES: Record<number, string> = {
  400: 'invalid_request_error',
  401: 'authentication_error',
  403: 'permission_error',
  404: 'not_found_error',
  413: 'request_too_large',
  429: 'rate_limit_error',
  500: 'api_error',
  529: 'overloaded_error',
};

export async function startFakeAnthropic(): Promise<FakeAnthropic> {
  const calls: RecordedAnthropicCall[] = [];
  const queue: AnthropicFault[] = [];
  const sockets = new Set<Socket>();

  const server = createServer(async (req, res) => {
    let raw = '';
    for await (const chunk of req) raw += chunk;
    let body: Record<string, unknown>;
    try {
      body = raw ? JSON.parse(raw) : {};
    } catch {
      body = {};
    }
    calls.push({ path: req.url ?? '', method: req.method ?? '', headers: req.headers, body });
    res.on('close', () => {
      if (!res.writableFinished) fake.aborted++;
    });
    await handle(req, res, body as MessagesBody, queue.shift());
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;

  const fake: FakeAnthropic = {
    url: `http://127.0.0.1:${port}`,
    calls,
    aborted: 0,
    script: (...faults) => queue.push(...faults),
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  return fake;
}

function sendError(res: ServerResponse, status: number, message: string, headers: Record<string, string> = {}, body?: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body ?? { type: 'error', error: { type: ERROR_TYPES[status] ?? 'api_error', message } }));
}

async function handle(req: IncomingMessage, res: ServerResponse, body: MessagesBody, fault: AnthropicFault | undefined): Promise<void> {
  if (fault && 'delayMs' in fault) await new Promise((r) => setTimeout(r, fault.delayMs));
  if (fault && 'dropSocket' in fault) {
    req.socket.destroy();
    return;
  }
  if (fault && 'status' in fault) return sendError(res, fault.status, 'upstream says no: sk-ant-internal-detail', fault.headers, fault.body);
  if (fault && 'answer' in fault) {
    res.writeHead(200, { 'content-type': 'application/json' });
    return writePaced(res, fault.answer);
  }
  if (fault && 'events' in fault) {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    return writePaced(res, fault.events.map((data) => `data: ${data}\n\n`).join(''));
  }
  if (req.method === 'POST' && req.url === '/v1/messages/count_tokens') {
    // Its own tokenizer, as far as tests can tell: 900 plus the words, so a native count differs from the gateway's estimate.
    if (!req.headers['x-api-key'] || !Array.isArray(body.messages) || 'max_tokens' in body) return sendError(res, 400, 'a count takes messages and no max_tokens');
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ input_tokens: 900 + answerFor({ ...body, max_tokens: 1 }).inputTokens }));
    return;
  }
  if (req.method !== 'POST' || req.url !== '/v1/messages') return sendError(res, 404, 'Not found');
  if (!req.headers['x-api-key']) return sendError(res, 401, 'x-api-key header is required');
  if (!req.headers['anthropic-version']) return sendError(res, 400, 'anthropic-version header is required');
  if (!Array.isArray(body.messages) || typeof body.max_tokens !== 'number') return sendError(res, 400, 'messages and max_tokens are required');

  const answer = answerFor(body);
  const model = body.model ?? 'claude-fake';
  // Extended thinking asked for: a signed thinking block before the answer, as Anthropic sends it.
  const thought = body.thinking?.type === 'enabled' ? `Thinking about: ${textOf(body.messages.at(-1)?.content ?? '')}` : undefined;
  const at = thought ? 1 : 0;
  // A request with a cache_control marker reads 1000 prompt tokens from the cache and writes 200, as a warm Anthropic cache would.
  const cached = raw(body).includes('"cache_control"');
  const usage = { input_tokens: answer.inputTokens, output_tokens: answer.outputTokens, cache_creation_input_tokens: cached ? 200 : 0, cache_read_input_tokens: cached ? 1000 : 0 };
  if (!body.stream) {
    res.writeHead(200, { 'content-type': 'application/json', 'request-id': 'req_fake_1' });
    const content = thought ? [{ type: 'thinking', thinking: thought, signature: FAKE_SIGNATURE }, answer.block] : [answer.block];
    res.end(JSON.stringify({ id: 'msg_fake_1', type: 'message', role: 'assistant', model, content, stop_reason: answer.stopReason, stop_sequence: null, usage }));
    return;
  }

  const events: Array<[string, unknown]> = [
    ['message_start', { type: 'message_start', message: { id: 'msg_fake_1', type: 'message', role: 'assistant', model, content: [], stop_reason: null, stop_sequence: null, usage: { ...usage, output_tokens: 1 } } }],
  ];
  if (thought) {
    events.push(['content_block_start', { type: 'content_block_start', index: 0, content_block: { type: 'thinking', thinking: '', signature: '' } }]);
    for (const piece of thirds(thought)) events.push(['content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'thinking_delta', thinking: piece } }]);
    events.push(['content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'signature_delta', signature: FAKE_SIGNATURE } }]);
    events.push(['content_block_stop', { type: 'content_block_stop', index: 0 }]);
  }
  events.push(
    ['content_block_start', { type: 'content_block_start', index: at, content_block: answer.block.type === 'text' ? { type: 'text', text: '' } : { ...answer.block, input: {} } }],
    ['ping', { type: 'ping' }],
  );
  const delta = (d: object): [string, unknown] => ['content_block_delta', { type: 'content_block_delta', index: at, delta: d }];
  if (answer.block.type === 'text') for (const piece of thirds(answer.block.text)) events.push(delta({ type: 'text_delta', text: piece }));
  else for (const piece of ['', ...thirds(JSON.stringify(answer.block.input))]) events.push(delta({ type: 'input_json_delta', partial_json: piece }));
  events.push(
    ['content_block_stop', { type: 'content_block_stop', index: at }],
    ['message_delta', { type: 'message_delta', delta: { stop_reason: answer.stopReason, stop_sequence: null }, usage: { output_tokens: answer.outputTokens } }],
    ['message_stop', { type: 'message_stop' }],
  );

  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  const breakAfter = fault && 'breakStreamAfterEvents' in fault ? fault.breakStreamAfterEvents : Infinity;
  for (const [i, [name, data]] of events.entries()) {
    if (i >= breakAfter) {
      req.socket.destroy();
      return;
    }
    if (res.destroyed) return;
    res.write(`event: ${name}\ndata: ${JSON.stringify(data)}\n\n`);
    await new Promise((r) => setImmediate(r));
  }
  res.end();
}

/** The signature on the fake's thinking blocks: a client must get it back unchanged. */
export const FAKE_SIGNATURE = 'EqQBCkYIBxgCKkDfakeSignature==';

type Answer = {
  block: { type: 'text'; text: string } | { type: 'tool_use'; id: string; name: string; input: { query: string } };
  stopReason: 'end_turn' | 'tool_use' | 'max_tokens';
  inputTokens: number;
  outputTokens: number;
};

function answerFor(body: MessagesBody): Answer {
  const messages = body.messages ?? [];
  const inputTokens = messages.reduce((n, m) => n + countWords(textOf(m.content)), countWords(textOf(body.system ?? '')));
  const last = [...messages].reverse().find((m) => m.role === 'user');
  const prompt = textOf(last?.content ?? '');
  const tool = body.tools?.[0];
  if (tool && prompt.includes('use tool')) {
    const input = { query: prompt };
    return { block: { type: 'tool_use', id: 'toolu_fake_1', name: tool.name, input }, stopReason: 'tool_use', inputTokens, outputTokens: countWords(JSON.stringify(input)) };
  }
  const words = `Anthropic echo: ${prompt}`.split(/\s+/).filter(Boolean);
  const kept = words.slice(0, body.max_tokens ?? Infinity);
  return { block: { type: 'text', text: kept.join(' ') }, stopReason: kept.length < words.length ? 'max_tokens' : 'end_turn', inputTokens, outputTokens: kept.length };
}

// Text of a message, including tool results, so a tool's answer can be echoed.
function textOf(content: string | Block[] | unknown): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  return (content as Block[])
    .map((b) => (b.type === 'text' && typeof b.text === 'string' ? b.text : b.type === 'tool_result' ? textOf(b.content) : ''))
    .filter(Boolean)
    .join(' ');
}

function raw(body: MessagesBody): string {
  return JSON.stringify(body);
}

function countWords(text: string): number {
  return text.split(/\s+/).filter(Boolean).length;
}

function thirds(text: string): string[] {
  const a = Math.ceil(text.length / 3);
  return [text.slice(0, a), text.slice(a, 2 * a), text.slice(2 * a)].filter((p) => p.length > 0);
}
