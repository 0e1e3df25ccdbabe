// A Responses request as the internal chat request, for upstreams that only
// speak Chat Completions (and for the governance stages, which read chat).
// What chat cannot express is an explicit result, never a silent drop: the
// caller either sends the request natively to an upstream that speaks the
// Responses API or refuses it with `unsupportedError` (a 400 naming the
// parameter).
import type { ChatMessage, ChatRequest, ContentPart } from '../schemas.js';
import { GatewayError } from '../../errors.js';
import type { ResponsesContentPart, ResponsesInputItem, ResponsesRequest } from './schema.js';

export interface UnsupportedFeature {
  /** The request field, as in error params: `tools[1]`, `input[3].type`. */
  param: string;
  /** Short name for logs and metrics: `tool:web_search`, `truncation:auto`. */
  feature: string;
  message: string;
}

export type ChatTranslation =
  | {
      ok: true;
      chat: ChatRequest;
      /**
       * Input the chat request does not carry although nothing changes for
       * the answer (reasoning items of an earlier turn: chat upstreams keep no
       * reasoning state). For logs, never for the client.
       */
      omitted: string[];
    }
  | { ok: false; unsupported: UnsupportedFeature };

export interface ChatTranslationOptions {
  /**
   * The conversation so far when the request continues `previous_response_id`:
   * the earlier request's input items, then its output items (conversation.ts).
   * They come after this request's `instructions` and before its `input`;
   * instructions of earlier turns are not carried over, as OpenAI documents.
   */
  previous?: readonly ResponsesInputItem[];
}

class Unsupported extends Error {
  constructor(readonly detail: UnsupportedFeature) {
    super(detail.message);
  }
}

function unsupported(param: string, feature: string, message: string): never {
  throw new Unsupported({ param, feature, message });
}

/** The 400 for an upstream that cannot serve a feature. */
export function unsupportedError(u: UnsupportedFeature): GatewayError {
  return new GatewayError('invalid_request', u.message, { param: u.param });
}

export function responsesToChat(request: ResponsesRequest, options: ChatTranslationOptions = {}): ChatTranslation {
  try {
    return translate(request, options);
  } catch (err) {
    if (err instanceof Unsupported) return { ok: false, unsupported: err.detail };
    throw err;
  }
}

const CHAT_ONLY = 'this model is served through Chat Completions, which';

function translate(request: ResponsesRequest, options: ChatTranslationOptions): ChatTranslation & { ok: true } {
  const omitted: string[] = [];
  if (request.background === true) unsupported('background', 'background', 'background responses are not supported by this gateway; leave background out and wait for the answer, or stream it.');
  if (request.truncation === 'auto') {
    unsupported('truncation', 'truncation:auto', `truncation "auto" is not supported: ${CHAT_ONLY} cannot drop earlier turns for you; leave truncation out or set it to "disabled".`);
  }
  if (request.prompt !== undefined) unsupported('prompt', 'prompt', `stored prompts (the prompt parameter) are not supported: ${CHAT_ONLY} has no prompt objects; send input, or use a gateway template with model "prompt:<name>".`);
  if (request.conversation !== undefined) unsupported('conversation', 'conversation', 'conversation objects are not supported by this gateway; continue with previous_response_id instead.');
  if (typeof request.max_tool_calls === 'number') unsupported('max_tool_calls', 'max_tool_calls', `max_tool_calls is not supported: ${CHAT_ONLY} cannot cap tool calls; leave it out.`);

  const messages: ChatMessage[] = [];
  if (request.instructions) messages.push({ role: 'system', content: request.instructions });
  (options.previous ?? []).forEach((item, i) => appendItem(messages, item, `previous_response_id (item ${i})`, omitted));
  if (typeof request.input === 'string') messages.push({ role: 'user', content: request.input });
  else (request.input ?? []).forEach((item, i) => appendItem(messages, item, `input[${i}]`, omitted));

  const chat: ChatRequest = { model: request.model, messages };
  if (request.stream === true) {
    chat.stream = true;
    // Responses always end with usage; chat streams only report it when asked.
    chat.stream_options = { include_usage: true };
  }
  if (typeof request.max_output_tokens === 'number') chat.max_completion_tokens = request.max_output_tokens;
  if (typeof request.temperature === 'number') chat.temperature = request.temperature;
  if (typeof request.top_p === 'number') chat.top_p = request.top_p;
  if (request.user !== undefined) chat.user = request.user;
  if (request.metadata) chat.metadata = request.metadata;
  if (typeof request.parallel_tool_calls === 'boolean') chat.parallel_tool_calls = request.parallel_tool_calls;
  if (request.reasoning?.effort) chat.reasoning_effort = request.reasoning.effort;
  if (request.reasoning?.summary) {
    unsupported('reasoning.summary', 'reasoning.summary', `reasoning summaries are not supported: ${CHAT_ONLY} returns no reasoning; leave reasoning.summary out.`);
  }
  for (const field of ['service_tier', 'prompt_cache_key', 'safety_identifier'] as const) {
    if (request[field] !== undefined && request[field] !== null) chat[field] = request[field];
  }
  const includes = request.include ?? [];
  if (includes.includes('message.output_text.logprobs') || typeof request.top_logprobs === 'number') {
    chat.logprobs = true;
    if (typeof request.top_logprobs === 'number') chat.top_logprobs = request.top_logprobs;
  }
  // The other include values ask for outputs of hosted tools (refused below
  // when offered) or for encrypted reasoning, which a chat upstream never
  // produces: asking for them changes nothing.
  const format = request.text?.format;
  if (format?.type === 'json_object') chat.response_format = { type: 'json_object' };
  else if (format?.type === 'json_schema') {
    const { name, schema, description, strict } = format as { name: string; schema: Record<string, unknown>; description?: string; strict?: boolean | null };
    chat.response_format = {
      type: 'json_schema',
      json_schema: { name, schema, ...(description !== undefined ? { description } : {}), ...(typeof strict === 'boolean' ? { strict } : {}) },
    };
  }
  if (request.text?.verbosity) chat.verbosity = request.text.verbosity;

  const tools = request.tools ?? [];
  if (tools.length > 0) {
    chat.tools = tools.map((tool, i) => {
      if (tool.type !== 'function') {
        unsupported(`tools[${i}]`, `tool:${tool.type}`, `tools[${i}] is a hosted "${tool.type}" tool: ${CHAT_ONLY} cannot run hosted tools; offer function tools only, or use a model whose upstream speaks the Responses API.`);
      }
      const fn = tool as { name: string; description?: string | null; parameters?: Record<string, unknown> | null; strict?: boolean | null };
      return {
        type: 'function' as const,
        function: {
          name: fn.name,
          ...(fn.description ? { description: fn.description } : {}),
          ...(fn.parameters ? { parameters: fn.parameters } : {}),
          ...(typeof fn.strict === 'boolean' ? { strict: fn.strict } : {}),
        },
      };
    });
  }
  const choice = request.tool_choice;
  if (typeof choice === 'string') chat.tool_choice = choice;
  else if (choice?.type === 'function') chat.tool_choice = { type: 'function', function: { name: (choice as { name: string }).name } };
  else if (choice) unsupported('tool_choice', `tool_choice:${choice.type}`, `tool_choice of type "${choice.type}" is not supported: ${CHAT_ONLY} can only be told "none", "auto", "required" or one function.`);
  return { ok: true, chat, omitted };
}

function appendItem(messages: ChatMessage[], item: ResponsesInputItem, param: string, omitted: string[]): void {
  const type = item.type ?? 'message';
  if (type === 'message') {
    const m = item as { role: 'user' | 'assistant' | 'system' | 'developer'; content: string | ResponsesContentPart[] };
    const content = typeof m.content === 'string' ? m.content : m.content.map((part, j) => chatPart(part, `${param}.content[${j}]`, m.role));
    messages.push({ role: m.role, content });
    return;
  }
  if (type === 'function_call') {
    const fc = item as { call_id: string; name: string; arguments: string };
    const call: NonNullable<ChatMessage['tool_calls']>[number] = { id: fc.call_id, type: 'function', function: { name: fc.name, arguments: fc.arguments } };
    // Parallel calls are separate items but one assistant turn in chat.
    const last = messages.at(-1);
    if (last?.role === 'assistant' && (last.tool_calls !== undefined || !hasText(last.content))) last.tool_calls = [...(last.tool_calls ?? []), call];
    else messages.push({ role: 'assistant', content: null, tool_calls: [call] });
    return;
  }
  if (type === 'function_call_output') {
    const out = item as { call_id: string; output: string | ResponsesContentPart[] };
    const content = typeof out.output === 'string' ? out.output : out.output.map((part, j) => chatPart(part, `${param}.output[${j}]`, 'tool'));
    messages.push({ role: 'tool', tool_call_id: out.call_id, content });
    return;
  }
  if (type === 'reasoning') {
    omitted.push(`${param}: reasoning item`);
    return;
  }
  if (type === 'item_reference') {
    unsupported(`${param}.type`, 'item_reference', `${param} is an item_reference: this gateway cannot resolve item references; send the item itself, or continue with previous_response_id.`);
  }
  unsupported(`${param}.type`, `item:${type}`, `${param} has type "${type}": ${CHAT_ONLY} has no such item; send messages, function_call and function_call_output items.`);
}

function hasText(content: ChatMessage['content']): boolean {
  return typeof content === 'string' ? content.length > 0 : Array.isArray(content) && content.length > 0;
}

function chatPart(part: ResponsesContentPart, param: string, role: string): ContentPart {
  switch (part.type) {
    case 'input_text':
    case 'output_text':
      return { type: 'text', text: (part as { text: string }).text };
    case 'refusal':
      return { type: 'text', text: (part as { refusal: string }).refusal };
    case 'input_image': {
      const img = part as { image_url?: string | null; file_id?: string | null; detail?: string };
      if (!img.image_url) unsupported(`${param}.file_id`, 'input_image:file_id', `${param} names an uploaded file (file_id): ${CHAT_ONLY} takes images by URL; send image_url (an https or data: URL).`);
      if (role !== 'user') unsupported(`${param}.type`, 'input_image:role', `${param} is an image in a "${role}" message: ${CHAT_ONLY} takes images in user messages only.`);
      return { type: 'image_url', image_url: { url: img.image_url, ...(img.detail && img.detail !== 'original' ? { detail: img.detail } : {}) } };
    }
    default:
      return unsupported(`${param}.type`, `part:${part.type}`, `${param} has type "${part.type}": ${CHAT_ONLY} cannot take it; send input_text or input_image parts.`);
  }
}
