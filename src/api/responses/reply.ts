// A chat completion as a Response object, and the parts both the plain and
// the streamed reply share: ids, usage, the echoed request settings.
import { randomHex } from '../random-id.js';
import type { ChatCompletion, Usage } from '../schemas.js';
import type { ResponsesRequest } from './schema.js';
import type { FunctionCallItem, OutputItem, OutputMessage, ReasoningItem, ResponseObject, ResponsesUsage } from './types.js';

/** `resp_`, `msg_`, `fc_` followed by 48 hex digits: unguessable, since a stored response is read by its id. */
export function createItemId(prefix: 'resp' | 'msg' | 'fc'): string {
  return `${prefix}_${randomHex(24)}`;
}

export function responsesUsage(u: Usage | null | undefined): ResponsesUsage {
  const details = u?.prompt_tokens_details;
  const cached = typeof details?.cached_tokens === 'number' ? details.cached_tokens : 0;
  const cacheWrite = typeof details?.cache_write_tokens === 'number' ? details.cache_write_tokens : 0;
  const reasoning = u?.completion_tokens_details?.reasoning_tokens;
  const input = u?.prompt_tokens ?? 0;
  const output = u?.completion_tokens ?? 0;
  return {
    input_tokens: input,
    input_tokens_details: { cached_tokens: cached, cache_write_tokens: cacheWrite },
    output_tokens: output,
    output_tokens_details: { reasoning_tokens: typeof reasoning === 'number' ? reasoning : 0 },
    total_tokens: u?.total_tokens ?? input + output,
  };
}

export interface ResponseMeta {
  id: string;
  /** Unix seconds. */
  createdAt: number;
  /** The model the client asked for, echoed as OpenAI does (not the deployment's upstream name). */
  model: string;
  request: ResponsesRequest;
}

export function responseMeta(turn: { id: string; createdAt: number; request: ResponsesRequest }): ResponseMeta {
  return { id: turn.id, createdAt: turn.createdAt, model: turn.request.model, request: turn.request };
}

/** The Response before any output: what `response.created` carries, and the frame of the final one. */
export function responseSkeleton(meta: ResponseMeta): ResponseObject {
  const r = meta.request;
  return {
    id: meta.id,
    object: 'response',
    created_at: meta.createdAt,
    status: 'in_progress',
    background: r.background === true,
    error: null,
    incomplete_details: null,
    instructions: r.instructions ?? null,
    max_output_tokens: r.max_output_tokens ?? null,
    model: meta.model,
    output: [],
    parallel_tool_calls: r.parallel_tool_calls ?? true,
    previous_response_id: r.previous_response_id ?? null,
    reasoning: { effort: r.reasoning?.effort ?? null, summary: r.reasoning?.summary ?? null },
    store: r.store !== false,
    temperature: r.temperature ?? null,
    text: { format: (r.text?.format as ResponseObject['text']['format'] | undefined) ?? { type: 'text' } },
    tool_choice: r.tool_choice ?? 'auto',
    tools: r.tools ?? [],
    top_p: r.top_p ?? null,
    truncation: r.truncation ?? 'disabled',
    ...(r.user !== undefined ? { user: r.user } : {}),
    metadata: r.metadata ?? {},
  };
}

/** Where a chat finish_reason leaves the response. */
export function finishStatus(finishReason: string | null | undefined): Pick<ResponseObject, 'status' | 'incomplete_details'> {
  if (finishReason === 'length') return { status: 'incomplete', incomplete_details: { reason: 'max_output_tokens' } };
  if (finishReason === 'content_filter') return { status: 'incomplete', incomplete_details: { reason: 'content_filter' } };
  return { status: 'completed', incomplete_details: null };
}

export function chatToResponse(completion: ChatCompletion, meta: ResponseMeta): ResponseObject {
  const choice = completion.choices[0];
  const output: OutputItem[] = [];
  const status = finishStatus(choice?.finish_reason);
  const itemStatus = status.status === 'completed' ? 'completed' : 'incomplete';
  const msg = choice?.message;
  // Reasoning first, as the upstream answered it: only an upstream that speaks the Responses API gives any.
  if (Array.isArray(msg?.reasoning_items)) output.push(...(msg.reasoning_items as ReasoningItem[]));
  if (msg && (typeof msg.content === 'string' && msg.content !== '' || typeof msg.refusal === 'string')) {
    const message: OutputMessage = { type: 'message', id: createItemId('msg'), status: itemStatus, role: 'assistant', content: [] };
    if (typeof msg.content === 'string' && msg.content !== '') message.content.push({ type: 'output_text', text: msg.content, annotations: [], ...logprobsOf(choice) });
    if (typeof msg.refusal === 'string') message.content.push({ type: 'refusal', refusal: msg.refusal });
    output.push(message);
  }
  for (const call of msg?.tool_calls ?? []) {
    const item: FunctionCallItem = { type: 'function_call', id: createItemId('fc'), call_id: call.id, name: call.function.name, arguments: call.function.arguments, status: 'completed' };
    output.push(item);
  }
  return {
    ...responseSkeleton(meta),
    ...status,
    completed_at: status.status === 'completed' ? Math.floor(Date.now() / 1000) : null,
    output,
    usage: responsesUsage(completion.usage),
  };
}

function logprobsOf(choice: { logprobs?: unknown } | undefined): { logprobs?: unknown[] } {
  const content = (choice?.logprobs as { content?: unknown } | null | undefined)?.content;
  return Array.isArray(content) ? { logprobs: content } : {};
}
