// An Anthropic Messages request as the internal chat request, for upstreams
// that do not speak the Messages API (an Anthropic upstream gets the request
// natively, cache markers and thinking intact). What chat cannot express is
// an explicit `unsupported` result, as for the Responses API.
import type { ChatMessage, ChatRequest, ContentPart } from '../schemas.js';
import type { UnsupportedFeature } from '../responses/to-chat.js';
import type { MessagesBlock, MessagesRequest } from './schema.js';

export type { UnsupportedFeature } from '../responses/to-chat.js';
export { unsupportedError } from '../responses/to-chat.js';

export type MessagesChatTranslation =
  | {
      ok: true;
      chat: ChatRequest;
      /**
       * `cache_control` markers chat cannot carry. The request still works,
       * only without prompt caching: issue K wants them logged and counted.
       */
      droppedCacheMarkers: number;
      /** Input not carried although the answer does not depend on it (thinking settings and earlier thinking blocks). For logs. */
      omitted: string[];
    }
  | { ok: false; unsupported: UnsupportedFeature };

class Unsupported extends Error {
  constructor(readonly detail: UnsupportedFeature) {
    super(detail.message);
  }
}

function unsupported(param: string, feature: string, message: string): never {
  throw new Unsupported({ param, feature, message });
}

const NOT_ANTHROPIC = 'this model is not served by Anthropic, and its API';
/** Chat Completions' own limit on `stop`. */
const MAX_CHAT_STOP = 4;

export function messagesToChat(request: MessagesRequest): MessagesChatTranslation {
  try {
    return translate(request);
  } catch (err) {
    if (err instanceof Unsupported) return { ok: false, unsupported: err.detail };
    throw err;
  }
}

function translate(request: MessagesRequest): MessagesChatTranslation & { ok: true } {
  let markers = 0;
  const omitted: string[] = [];
  const countMarker = (b: { cache_control?: unknown }) => {
    if (b.cache_control) markers++;
  };

  const messages: ChatMessage[] = [];
  if (typeof request.system === 'string') {
    if (request.system) messages.push({ role: 'system', content: request.system });
  } else if (request.system) {
    request.system.forEach(countMarker);
    const text = request.system.map((b) => b.text).join('\n\n');
    if (text) messages.push({ role: 'system', content: text });
  }

  request.messages.forEach((m, i) => {
    const param = `messages[${i}]`;
    if (typeof m.content === 'string') {
      messages.push({ role: m.role, content: m.content });
      return;
    }
    if (m.role === 'assistant') {
      const text: string[] = [];
      const calls: NonNullable<ChatMessage['tool_calls']> = [];
      m.content.forEach((b, j) => {
        countMarker(b as { cache_control?: unknown });
        if (b.type === 'text') text.push((b as { text: string }).text);
        else if (b.type === 'tool_use') {
          const use = b as { id: string; name: string; input: Record<string, unknown> };
          calls.push({ id: use.id, type: 'function', function: { name: use.name, arguments: JSON.stringify(use.input) } });
        } else if (b.type === 'thinking' || b.type === 'redacted_thinking') omitted.push(`${param}.content[${j}]: ${b.type} block`);
        else unsupportedBlock(b, `${param}.content[${j}]`);
      });
      messages.push({ role: 'assistant', content: text.length > 0 ? text.join('') : null, ...(calls.length > 0 ? { tool_calls: calls } : {}) });
      return;
    }
    // A user turn: tool results become tool messages, which chat wants right
    // after the assistant's calls, so they go first; the rest is one user message.
    const parts: ContentPart[] = [];
    m.content.forEach((b, j) => {
      const at = `${param}.content[${j}]`;
      countMarker(b as { cache_control?: unknown });
      if (b.type === 'tool_result') messages.push(toolMessage(b, at, countMarker));
      else parts.push(userPart(b, at));
    });
    if (parts.length > 0) messages.push({ role: 'user', content: parts });
  });

  const chat: ChatRequest = { model: request.model, messages, max_tokens: request.max_tokens };
  if (request.stream === true) {
    chat.stream = true;
    chat.stream_options = { include_usage: true };
  }
  if (typeof request.temperature === 'number') chat.temperature = request.temperature;
  if (typeof request.top_p === 'number') chat.top_p = request.top_p;
  if (typeof request.top_k === 'number') unsupported('top_k', 'top_k', `top_k is not supported: ${NOT_ANTHROPIC} has no top_k; leave it out.`);
  const stops = request.stop_sequences ?? [];
  if (stops.length > MAX_CHAT_STOP) {
    unsupported('stop_sequences', 'stop_sequences:many', `stop_sequences may hold at most ${MAX_CHAT_STOP} entries for this model: ${NOT_ANTHROPIC} takes no more.`);
  }
  if (stops.length > 0) chat.stop = stops;
  if (request.metadata?.user_id) chat.user = request.metadata.user_id;
  if (request.thinking && request.thinking.type !== 'disabled') omitted.push(`thinking: ${request.thinking.type}`);

  if (request.tools && request.tools.length > 0) {
    chat.tools = request.tools.map((t, i) => {
      if (t.type !== undefined && t.type !== 'custom') {
        unsupported(`tools[${i}]`, `tool:${t.type}`, `tools[${i}] is Anthropic's "${t.type}" tool: ${NOT_ANTHROPIC} cannot run it; offer custom tools (name, description, input_schema) only.`);
      }
      countMarker(t as { cache_control?: unknown });
      const custom = t as { name: string; description?: string; input_schema: Record<string, unknown> };
      return { type: 'function' as const, function: { name: custom.name, ...(custom.description ? { description: custom.description } : {}), parameters: custom.input_schema } };
    });
  }
  const choice = request.tool_choice;
  if (choice) {
    if (choice.type === 'auto') chat.tool_choice = 'auto';
    else if (choice.type === 'any') chat.tool_choice = 'required';
    else if (choice.type === 'none') chat.tool_choice = 'none';
    else chat.tool_choice = { type: 'function', function: { name: (choice as { name: string }).name } };
    if ((choice as { disable_parallel_tool_use?: boolean }).disable_parallel_tool_use === true) chat.parallel_tool_calls = false;
  }
  return { ok: true, chat, droppedCacheMarkers: markers, omitted };
}

function userPart(b: MessagesBlock, param: string): ContentPart {
  if (b.type === 'text') return { type: 'text', text: (b as { text: string }).text };
  if (b.type === 'image') {
    const source = (b as { source: { type: string; media_type?: string; data?: string; url?: string } }).source;
    if (source.type === 'base64') return { type: 'image_url', image_url: { url: `data:${source.media_type};base64,${source.data}` } };
    if (source.type === 'url' && source.url) return { type: 'image_url', image_url: { url: source.url } };
    unsupported(`${param}.source.type`, `image:${source.type}`, `${param} is an image from a "${source.type}" source: ${NOT_ANTHROPIC} takes images as base64 or URL sources.`);
  }
  return unsupportedBlock(b, param);
}

function toolMessage(b: MessagesBlock, param: string, countMarker: (b: { cache_control?: unknown }) => void): ChatMessage {
  const result = b as { tool_use_id: string; content?: string | MessagesBlock[]; is_error?: boolean };
  let text: string;
  if (result.content === undefined || typeof result.content === 'string') text = result.content ?? '';
  else {
    text = result.content
      .map((c, k) => {
        countMarker(c as { cache_control?: unknown });
        if (c.type === 'text') return (c as { text: string }).text;
        return unsupported(`${param}.content[${k}].type`, `tool_result:${c.type}`, `${param}.content[${k}] is a "${c.type}" block: ${NOT_ANTHROPIC} takes text-only tool results.`);
      })
      .join('');
  }
  // Chat has no error flag on tool results; the model still needs to know.
  return { role: 'tool', tool_call_id: result.tool_use_id, content: result.is_error === true ? `Error: ${text}` : text };
}

function unsupportedBlock(b: MessagesBlock, param: string): never {
  return unsupported(`${param}.type`, `block:${b.type}`, `${param} is a "${b.type}" block: ${NOT_ANTHROPIC} cannot take it; send text, image, tool_use and tool_result blocks.`);
}
