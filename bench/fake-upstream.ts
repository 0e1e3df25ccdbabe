// A fast OpenAI-compatible upstream for the benchmark. Every answer is built
// once at start-up, so the upstream costs as little as possible and the
// numbers measure the process between the load generator and this one.
//
//   node fake-upstream.js [--port 0] [--chunk-delay-ms 0] [--stream-chunks 20] [--delay-ms 0] [--answer-bytes 0]
//
// With --answer-bytes N the plain answer's content is padded so the whole
// JSON answer is about N bytes (the workload: a 1.3 KB answer).
//
// With --chunk-delay-ms > 0 streamed answers are paced (a slow model), which
// keeps many streams open at once for the memory measurement; --stream-chunks
// sets how many content chunks a stream has (20), so how long a paced one
// lasts. With
// --delay-ms > 0 every plain answer waits that long (a model with a fixed
// latency, for the overload benchmark); it has no concurrency limit of its own.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '0' },
    'chunk-delay-ms': { type: 'string', default: '0' },
    'stream-chunks': { type: 'string', default: '20' },
    'delay-ms': { type: 'string', default: '0' },
    'answer-bytes': { type: 'string', default: '0' },
  },
});

const CHUNKS = Math.max(1, Number(values['stream-chunks']));
const CREATED = 1_700_000_000;
const USAGE = { prompt_tokens: 12, completion_tokens: CHUNKS, total_tokens: 12 + CHUNKS };


function sseEvent(data: unknown): Buffer {
  return Buffer.from(`data: ${typeof data === 'string' ? data : JSON.stringify(data)}\n\n`);
}

function chunk(delta: Record<string, string>, finishReason: string | null): Buffer {
  return sseEvent({
    id: 'chatcmpl-bench',
    object: 'chat.completion.chunk',
    created: CREATED,
    model: 'bench-upstream',
    choices: [{ index: 0, delta, finish_reason: finishReason }],
  });
}

// CHUNKS content chunks, the last one carrying finish_reason, then the usage
// chunk (what `stream_options.include_usage` asks for) and [DONE].
const streamEvents: Buffer[] = [];
for (let i = 0; i < CHUNKS; i++) {
  const delta: Record<string, string> = i === 0 ? { role: 'assistant', content: 'tok0 ' } : { content: `tok${i} ` };
  streamEvents.push(chunk(delta, i === CHUNKS - 1 ? 'stop' : null));
}
streamEvents.push(
  sseEvent({ id: 'chatcmpl-bench', object: 'chat.completion.chunk', created: CREATED, model: 'bench-upstream', choices: [], usage: USAGE }),
  sseEvent('[DONE]'),
);
const streamBytes = Buffer.concat(streamEvents);

const notFoundBytes = Buffer.from('{"error":{"message":"not found","type":"invalid_request_error"}}');

function completion(content: string): string {
  return JSON.stringify({
    id: 'chatcmpl-bench',
    object: 'chat.completion',
    created: CREATED,
    model: 'bench-upstream',
    choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: 'stop' }],
    usage: USAGE,
  });
}
const SHORT = 'Hello from the bench upstream.';
const answerBytes = Number(values['answer-bytes']);
const PROSE = 'The gateway forwards this answer after checking the lane, the budget and the rate limit. ';
const padding = Math.max(0, answerBytes - completion(SHORT).length);
const completionBytes = Buffer.from(completion(padding > 0 ? (SHORT + ' ' + PROSE.repeat(Math.ceil(padding / PROSE.length))).slice(0, SHORT.length + padding) : SHORT));
const chunkDelayMs = Number(values['chunk-delay-ms']);
const delayMs = Number(values['delay-ms']);

function sendStream(res: ServerResponse): void {
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  if (chunkDelayMs <= 0) {
    // Back-to-back: the whole stream leaves in one write.
    res.end(streamBytes);
    return;
  }
  let next = 0;
  const timer = setInterval(() => {
    const event = streamEvents[next++];
    if (event === undefined || res.destroyed) {
      clearInterval(timer);
      if (!res.destroyed) res.end();
      return;
    }
    res.write(event);
  }, chunkDelayMs);
  res.on('close', () => clearInterval(timer));
}

function handle(req: IncomingMessage, res: ServerResponse, body: string): void {
  if (req.method !== 'POST' || !req.url?.startsWith('/v1/chat/completions')) {
    res.writeHead(404, { 'content-type': 'application/json', 'content-length': notFoundBytes.length });
    res.end(notFoundBytes);
    return;
  }
  // The bench's own clients and the gateway both serialise without spaces.
  if (body.includes('"stream":true')) {
    sendStream(res);
    return;
  }
  if (delayMs > 0) {
    setTimeout(() => {
      if (res.destroyed) return;
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': completionBytes.length });
      res.end(completionBytes);
    }, delayMs);
    return;
  }
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': completionBytes.length });
  res.end(completionBytes);
}

const server = createServer({ keepAliveTimeout: 60_000 }, (req, res) => {
  const parts: Buffer[] = [];
  req.on('data', (part: Buffer) => parts.push(part));
  req.on('end', () => handle(req, res, Buffer.concat(parts).toString('utf8')));
});

server.listen(Number(values.port), '127.0.0.1', () => {
  const { port } = server.address() as AddressInfo;
  console.log(JSON.stringify({ msg: 'fake upstream listening', port, chunkDelayMs, delayMs, answerBytes: completionBytes.length }));
});

for (const signal of ['SIGTERM', 'SIGINT'] as const) process.once(signal, () => process.exit(0));
