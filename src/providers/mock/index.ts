// A built-in deterministic provider: it echoes the last user message, calls a
// tool when asked to, and embeds text into stable vectors. The gateway answers
// out of the box with it, and tests need no network.
import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type {
  ChatChunk,
  ChatCompletion,
  ChatMessage,
  ChatRequest,
  EmbeddingsRequest,
  EmbeddingsResponse,
  ToolCall,
  Usage,
} from '../../api/schemas.js';
import type { ProviderConfig } from '../../config/schema.js';
import { upstreamTransportError } from '../errors.js';
import type { Cancel } from '../cancel.js';
import type { ProviderAdapter } from '../types.js';

type MockProvider = Extract<ProviderConfig, { type: 'mock' }>;

interface MockAnswer {
  content: string | null;
  toolCalls: ToolCall[];
  finishReason: 'stop' | 'length' | 'tool_calls';
  usage: Usage;
}

export function createMockAdapter(name: string, provider: MockProvider): ProviderAdapter {
  async function wait(ms: number, cancel: Cancel): Promise<void> {
    if (ms <= 0) {
      if (cancel.aborted) throw upstreamTransportError(name, cancel.reason, cancel);
      return;
    }
    try {
      await sleep(ms, undefined, { signal: cancel.signal });
    } catch (err) {
      throw upstreamTransportError(name, err, cancel);
    }
  }

  return {
    async chat(request, deployment, cancel) {
      await wait(provider.latency_ms, cancel);
      const n = request.n ?? 1;
      const answer = answerFor(request);
      const completion: ChatCompletion = {
        id: completionId(request),
        object: 'chat.completion',
        created: Math.floor(Date.now() / 1000),
        model: deployment.model,
        choices: Array.from({ length: n }, (_, index) => ({
          index,
          message: {
            role: 'assistant' as const,
            content: answer.content,
            ...(answer.toolCalls.length > 0 ? { tool_calls: answer.toolCalls } : {}),
            refusal: null,
          },
          finish_reason: answer.finishReason,
          logprobs: null,
        })),
        usage: { ...answer.usage, completion_tokens: answer.usage.completion_tokens * n, total_tokens: answer.usage.prompt_tokens + answer.usage.completion_tokens * n },
        system_fingerprint: 'mock',
      };
      return { completion };
    },

    async *chatStream(request, deployment, cancel): AsyncGenerator<ChatChunk> {
      await wait(provider.latency_ms, cancel);
      const answer = answerFor(request);
      const base = { id: completionId(request), object: 'chat.completion.chunk' as const, created: Math.floor(Date.now() / 1000), model: deployment.model };
      const chunk = (delta: ChatChunk['choices'][number]['delta'], finish: string | null = null): ChatChunk => ({
        ...base,
        choices: [{ index: 0, delta, finish_reason: finish, logprobs: null }],
      });
      yield chunk({ role: 'assistant', content: '' });
      if (answer.content) {
        const pieces = answer.content.match(/\S+\s*/g) ?? [answer.content];
        for (const piece of pieces) {
          await wait(provider.chunk_delay_ms, cancel);
          yield chunk({ content: piece });
        }
      }
      for (const [index, call] of answer.toolCalls.entries()) {
        await wait(provider.chunk_delay_ms, cancel);
        yield chunk({ tool_calls: [{ index, id: call.id, type: 'function', function: { name: call.function.name, arguments: '' } }] });
        yield chunk({ tool_calls: [{ index, function: { arguments: call.function.arguments } }] });
      }
      yield chunk({}, answer.finishReason);
      yield { ...base, choices: [], usage: answer.usage };
    },

    async embed(request, deployment, cancel) {
      await wait(provider.latency_ms, cancel);
      const inputs = embeddingInputs(request);
      const dimensions = request.dimensions ?? 16;
      let tokens = 0;
      const data = inputs.map((text, index) => {
        tokens += countWords(text);
        const vector = embedText(text, dimensions);
        return {
          object: 'embedding' as const,
          index,
          embedding: request.encoding_format === 'base64' ? Buffer.from(Float32Array.from(vector).buffer).toString('base64') : vector,
        };
      });
      const response: EmbeddingsResponse = { object: 'list', data, model: deployment.model, usage: { prompt_tokens: tokens, total_tokens: tokens } };
      return response;
    },
  };
}

function answerFor(request: ChatRequest): MockAnswer {
  const prompt = lastUserText(request.messages);
  const promptTokens = request.messages.reduce((sum, m) => sum + 3 + countWords(messageText(m)), 3);
  const tool = chooseTool(request, prompt);
  if (tool) {
    const args = JSON.stringify({ input: prompt });
    const id = `call_${createHash('sha256').update(tool + prompt).digest('hex').slice(0, 24)}`;
    return {
      content: null,
      toolCalls: [{ id, type: 'function', function: { name: tool, arguments: args } }],
      finishReason: 'tool_calls',
      usage: { prompt_tokens: promptTokens, completion_tokens: countWords(args) + 1, total_tokens: promptTokens + countWords(args) + 1 },
    };
  }
  const words = `Echo: ${prompt}`.split(/\s+/).filter(Boolean);
  const cap = request.max_completion_tokens ?? request.max_tokens ?? Infinity;
  const kept = words.slice(0, cap);
  return {
    content: kept.join(' '),
    toolCalls: [],
    finishReason: kept.length < words.length ? 'length' : 'stop',
    usage: { prompt_tokens: promptTokens, completion_tokens: kept.length, total_tokens: promptTokens + kept.length },
  };
}

// A tool is called when the app forces one, or when the user's message names
// an offered tool ("call get_weather for Paris").
function chooseTool(request: ChatRequest, prompt: string): string | undefined {
  const tools = request.tools ?? [];
  const choice = request.tool_choice;
  if (tools.length === 0 || choice === 'none') return undefined;
  if (choice && typeof choice === 'object') return choice.function.name;
  const named = tools.find((t) => prompt.includes(t.function.name));
  if (named) return named.function.name;
  return choice === 'required' ? tools[0]?.function.name : undefined;
}

function lastUserText(messages: readonly ChatMessage[]): string {
  for (let i = messages.length - 1; i >= 0; i--) {
    const m = messages[i]!;
    if (m.role === 'user' || m.role === 'tool') return messageText(m);
  }
  return '';
}

function messageText(m: ChatMessage): string {
  if (typeof m.content === 'string') return m.content;
  if (!Array.isArray(m.content)) return '';
  return m.content.map((p) => (p.type === 'text' && typeof p.text === 'string' ? p.text : '')).join(' ');
}

function countWords(text: string): number {
  let count = 0;
  let inWord = false;
  for (let i = 0; i < text.length; i++) {
    const space = text.charCodeAt(i) <= 32;
    if (!space && !inWord) count++;
    inWord = !space;
  }
  return count;
}

function completionId(request: ChatRequest): string {
  return `chatcmpl-mock-${createHash('sha256').update(JSON.stringify(request.messages)).digest('hex').slice(0, 20)}`;
}

function embeddingInputs(request: EmbeddingsRequest): string[] {
  const input = request.input;
  if (typeof input === 'string') return [input];
  if (input.length > 0 && typeof input[0] === 'number') return [(input as number[]).join(' ')];
  return (input as Array<string | number[]>).map((item) => (typeof item === 'string' ? item : item.join(' ')));
}

/** A unit vector derived from the text's hash: same text, same vector. */
export function embedText(text: string, dimensions: number): number[] {
  const vector: number[] = [];
  let block = Buffer.alloc(0);
  for (let i = 0; vector.length < dimensions; i++) {
    if (i % 8 === 0) block = createHash('sha256').update(`${text}\u0000${i / 8}`).digest();
    vector.push(block.readInt32LE((i % 8) * 4) / 2 ** 31);
  }
  const norm = Math.hypot(...vector) || 1;
  return vector.map((v) => Math.fround(v / norm));
}

