// An OpenAI-compatible answer, checked for the shape the rest of the gateway
// reads (choices, messages, tool calls, usage, embeddings) before anything
// reads it. Anything else is the provider's fault: 502 upstream_error, never
// a TypeError that would become a 500. Fields the gateway does not read pass
// through untouched.
//
// The answer's text goes on with it (`ChatAnswer.text`) only when the
// completion says exactly what the text says: every check passed without
// filling anything in (a choice's index, a message's content, a usage total
// or a whole usage counted here, a null tool_calls dropped), and no object
// member is named twice (JSON.parse keeps the last, a client's parser might
// keep the first: the guard must judge what the app reads).
import type { ChatCompletion, ChatRequest, EmbeddingsRequest, EmbeddingsResponse } from '../../api/schemas.js';
import { countMembers } from '../../json-depth.js';
import type { AnswerJson } from '../answer-json.js';
import type { ChatAnswer } from '../types.js';
import { upstreamProtocolError } from '../errors.js';
import { countUsage, isUsage, normaliseUsage, usageProblem } from '../usage.js';

type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const isIndex = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;
const isOptionalString = (v: unknown) => v === undefined || v === null || typeof v === 'string';

/** What is wrong with one tool call of a message (a complete one), or undefined. */
function toolCallProblem(call: unknown): string | undefined {
  if (!isObject(call) || typeof call.id !== 'string') return 'a tool call without an id';
  const fn = call.function;
  if (!isObject(fn) || typeof fn.name !== 'string' || typeof fn.arguments !== 'string') return 'a tool call without a function name and arguments text';
  return undefined;
}

export async function readChatCompletion(provider: string, answer: AnswerJson, request: ChatRequest): Promise<ChatAnswer> {
  const data = answer.value;
  if (!isObject(data) || !Array.isArray(data.choices)) throw upstreamProtocolError(provider, 'a chat completion without choices');
  let filled = false;
  for (const [i, choice] of data.choices.entries()) {
    if (!isObject(choice) || !isObject(choice.message)) throw upstreamProtocolError(provider, 'a choice without a message');
    if (choice.index === undefined) {
      choice.index = i;
      filled = true;
    } else if (!isIndex(choice.index)) throw upstreamProtocolError(provider, 'a choice whose index is not a number');
    if (!isOptionalString(choice.finish_reason)) throw upstreamProtocolError(provider, 'a finish_reason that is not text');
    const message = choice.message;
    if (!isOptionalString(message.content) || !isOptionalString(message.refusal)) throw upstreamProtocolError(provider, 'message content that is not text');
    if (message.content === undefined) {
      message.content = null;
      filled = true;
    }
    if (message.tool_calls !== undefined && message.tool_calls !== null) {
      if (!Array.isArray(message.tool_calls)) throw upstreamProtocolError(provider, 'tool_calls that are not a list');
      for (const call of message.tool_calls) {
        const problem = toolCallProblem(call);
        if (problem) throw upstreamProtocolError(provider, problem);
      }
    } else if (message.tool_calls === null) {
      delete message.tool_calls;
      filled = true;
    }
  }
  const completion = data as unknown as ChatCompletion;
  const problem = usageProblem(completion.usage);
  if (problem) throw upstreamProtocolError(provider, problem);
  if (isUsage(completion.usage)) {
    if (typeof completion.usage.total_tokens !== 'number') filled = true;
    completion.usage = normaliseUsage(completion.usage);
  } else {
    filled = true;
    let text = '';
    for (const choice of completion.choices) {
      text += choice.message.content ?? '';
      for (const call of choice.message.tool_calls ?? []) text += call.function.name + call.function.arguments;
    }
    completion.usage = await countUsage(request, text);
  }
  // Counted last: nothing above removed a member unless it also set `filled`.
  return filled || countMembers(data) !== answer.members ? { completion } : { completion, text: answer.text };
}

export function readEmbeddings(provider: string, data: unknown, request: EmbeddingsRequest): EmbeddingsResponse {
  if (!isObject(data) || !Array.isArray(data.data)) throw upstreamProtocolError(provider, 'an embeddings response without data');
  // One string, or one list of token ids, is one input.
  const input = request.input;
  const inputs = Array.isArray(input) && typeof input[0] !== 'number' ? input.length : 1;
  if (data.data.length !== inputs) throw upstreamProtocolError(provider, `${data.data.length} embeddings for ${inputs} inputs`);
  const base64 = request.encoding_format === 'base64';
  for (const item of data.data) {
    if (!isObject(item) || !isIndex(item.index) || item.index >= inputs) throw upstreamProtocolError(provider, 'an embedding without a valid index');
    const e = item.embedding;
    const ok = base64 ? typeof e === 'string' : Array.isArray(e) && e.every((x) => typeof x === 'number' && Number.isFinite(x));
    if (!ok) throw upstreamProtocolError(provider, `an embedding that is not ${base64 ? 'base64 text' : 'a list of numbers'}`);
  }
  const problem = usageProblem(data.usage);
  if (problem) throw upstreamProtocolError(provider, problem);
  const response = data as unknown as EmbeddingsResponse;
  const u = response.usage as Partial<EmbeddingsResponse['usage']> | null | undefined;
  const prompt = typeof u?.prompt_tokens === 'number' ? u.prompt_tokens : 0;
  response.usage = { prompt_tokens: prompt, total_tokens: typeof u?.total_tokens === 'number' ? u.total_tokens : prompt };
  return response;
}
