// Builds an Anthropic Messages API request from an OpenAI chat request.
// Anthropic rejects fields it does not know, so the body is built from the
// fields it understands rather than by deleting OpenAI-only ones.
import type { ChatMessage, ChatRequest, ToolCall } from '../../api/schemas.js';
import type { ProviderConfig } from '../../config/schema.js';
import { GatewayError } from '../../errors.js';
import { applyDeployment, type Deployment, type NativeRequest } from '../types.js';
import type { UpstreamRequest } from '../upstream.js';
import { addTraceHeaders } from '../../telemetry/propagation.js';

export type AnthropicProvider = Extract<ProviderConfig, { type: 'anthropic' }>;

// Anthropic requires max_tokens; OpenAI lets the model decide.
const DEFAULT_MAX_TOKENS = 4096;

export type TextBlock = { type: 'text'; text: string };
export type ImageBlock = {
  type: 'image';
  source: { type: 'base64'; media_type: string; data: string } | { type: 'url'; url: string };
};
export type ToolUseBlock = { type: 'tool_use'; id: string; name: string; input: Record<string, unknown> };
export type ToolResultBlock = { type: 'tool_result'; tool_use_id: string; content: string | Array<TextBlock | ImageBlock> };
export type ContentBlock = TextBlock | ImageBlock | ToolUseBlock | ToolResultBlock;

export interface AnthropicMessage {
  role: 'user' | 'assistant';
  content: ContentBlock[];
}

export type AnthropicToolChoice =
  | { type: 'none' }
  | { type: 'auto' | 'any'; disable_parallel_tool_use?: boolean }
  | { type: 'tool'; name: string; disable_parallel_tool_use?: boolean };

export interface MessagesBody {
  model: string;
  max_tokens: number;
  messages: AnthropicMessage[];
  system?: string;
  temperature?: number;
  top_p?: number;
  top_k?: number;
  stop_sequences?: string[];
  tools?: Array<{ name: string; description?: string; input_schema: Record<string, unknown> }>;
  tool_choice?: AnthropicToolChoice;
  metadata?: { user_id: string };
  stream?: true;
}


/**
 * A Messages request the app sent (`native`, validated and governed by the
 * gateway) goes out as it is, with the deployment's model and defaults, so
 * cache_control, thinking and every block type reach Anthropic intact; a
 * chat request is translated.
 */
export function buildMessagesRequest(provider: AnthropicProvider, request: ChatRequest, deployment: Deployment, stream: boolean | 'count', native?: NativeRequest): UpstreamRequest {
  const url = new URL(provider.base_url);
  // Accept base URLs written with or without the API version segment.
  const base = url.pathname.replace(/\/+$/, '').replace(/\/v1$/, '');
  const headers: Record<string, string> = {
    ...provider.headers,
    'content-type': 'application/json',
    'anthropic-version': provider.anthropic_version,
  };
  if (native?.provider === 'anthropic') Object.assign(headers, native.headers);
  if (provider.api_key) headers['x-api-key'] = provider.api_key;
  if (stream === true) headers.accept = 'text/event-stream';
  addTraceHeaders(headers);
  if (stream === 'count') {
    // A count takes the request without the answer's settings.
    const { model: _model, max_tokens: _max, stream: _stream, ...counted } = native?.body ?? {};
    return { origin: url.origin, path: `${base}/v1/messages/count_tokens`, headers, body: JSON.stringify({ ...counted, model: deployment.model }) };
  }
  return { origin: url.origin, path: `${base}/v1/messages`, headers, body: JSON.stringify(native?.provider === 'anthropic' ? nativeBody(native, deployment, stream) : buildMessagesBody(request, deployment, stream)) };
}

function nativeBody(native: NativeRequest, deployment: Deployment, stream: boolean): Record<string, unknown> {
  const body: Record<string, unknown> = applyDeployment({ ...native.body, model: deployment.model }, deployment);
  delete body.stream;
  if (stream) body.stream = true;
  return body;
}

export function buildMessagesBody(request: ChatRequest, deployment: Deployment, stream: boolean): MessagesBody {
  const req = applyDeployment(request, deployment);
  if (typeof req.n === 'number' && req.n > 1) {
    throw new GatewayError('invalid_request', 'Anthropic models return one choice per request; set n to 1 or leave it out.', { param: 'n' });
  }
  const { system, messages } = translateMessages(req.messages);
  const body: MessagesBody = { model: req.model, max_tokens: firstNumber(req.max_completion_tokens, req.max_tokens) ?? DEFAULT_MAX_TOKENS, messages };
  if (system) body.system = system;
  // Anthropic's temperature scale ends at 1 where OpenAI's ends at 2.
  if (typeof req.temperature === 'number') body.temperature = Math.min(1, Math.max(0, req.temperature));
  if (typeof req.top_p === 'number') body.top_p = req.top_p;
  // Not an OpenAI field, but a deployment may set it as a default param.
  if (typeof req.top_k === 'number') body.top_k = req.top_k;
  const stop = (typeof req.stop === 'string' ? [req.stop] : (req.stop ?? [])).filter((s) => s.length > 0);
  if (stop.length > 0) body.stop_sequences = stop;
  if (typeof req.user === 'string' && req.user) body.metadata = { user_id: req.user };
  if (req.tools && req.tools.length > 0) {
    body.tools = req.tools.map((t) => ({
      name: t.function.name,
      ...(t.function.description ? { description: t.function.description } : {}),
      input_schema: t.function.parameters ?? { type: 'object', properties: {} },
    }));
    const choice = translateToolChoice(req.tool_choice, req.parallel_tool_calls === false);
    if (choice) body.tool_choice = choice;
  }
  if (stream) body.stream = true;
  return body;
}

function firstNumber(...values: unknown[]): number | undefined {
  return values.find((v): v is number => typeof v === 'number');
}

function translateToolChoice(choice: ChatRequest['tool_choice'], serial: boolean): AnthropicToolChoice | undefined {
  const parallel = serial ? { disable_parallel_tool_use: true } : {};
  if (choice === 'none') return { type: 'none' };
  if (choice === 'required') return { type: 'any', ...parallel };
  if (choice && typeof choice === 'object') return { type: 'tool', name: choice.function.name, ...parallel };
  if (choice === 'auto' || serial) return { type: 'auto', ...parallel };
  return undefined;
}

function translateMessages(messages: readonly ChatMessage[]): { system: string; messages: AnthropicMessage[] } {
  const system: string[] = [];
  const out: AnthropicMessage[] = [];
  messages.forEach((m, i) => {
    const param = `messages[${i}]`;
    if (m.role === 'system' || m.role === 'developer') {
      const text = contentBlocks(m.content, param, { images: false }).map((b) => (b.type === 'text' ? b.text : '')).join('\n');
      if (text) system.push(text);
    } else if (m.role === 'user') {
      append(out, 'user', contentBlocks(m.content, param, { images: true }));
    } else if (m.role === 'assistant') {
      append(out, 'assistant', [...contentBlocks(m.content, param, { images: false }), ...(m.tool_calls ?? []).map((c, j) => toolUse(c, `${param}.tool_calls[${j}]`))]);
    } else if (m.role === 'tool') {
      append(out, 'user', [toolResult(m, param)]);
    } else {
      throw new GatewayError('invalid_request', `${param}.role "${m.role}" is not supported for Anthropic models; send tool results with role "tool".`, {
        param: `${param}.role`,
      });
    }
  });
  if (out.length === 0) {
    throw new GatewayError('invalid_request', 'messages must hold at least one user or assistant message with content.', { param: 'messages' });
  }
  return { system: system.join('\n\n'), messages: out };
}

// Anthropic requires user and assistant turns to alternate, so consecutive
// messages of one role (several tool results, say) become one turn.
function append(out: AnthropicMessage[], role: AnthropicMessage['role'], blocks: ContentBlock[]): void {
  if (blocks.length === 0) return; // Anthropic rejects empty turns
  const prev = out.at(-1);
  if (prev?.role !== role) {
    out.push({ role, content: blocks });
    return;
  }
  const merged = [...prev.content, ...blocks];
  // Tool results must open the user turn that answers the tool calls.
  prev.content = role === 'user' ? [...merged.filter((b) => b.type === 'tool_result'), ...merged.filter((b) => b.type !== 'tool_result')] : merged;
}

function contentBlocks(content: ChatMessage['content'], param: string, options: { images: boolean }): Array<TextBlock | ImageBlock> {
  if (typeof content === 'string') return content ? [{ type: 'text', text: content }] : [];
  if (!Array.isArray(content)) return [];
  const blocks: Array<TextBlock | ImageBlock> = [];
  content.forEach((part, j) => {
    const partParam = `${param}.content[${j}]`;
    if (part.type === 'text' && typeof part.text === 'string') {
      if (part.text) blocks.push({ type: 'text', text: part.text });
    } else if (part.type === 'image_url' && options.images) {
      const url = (part.image_url as { url?: unknown } | undefined)?.url;
      blocks.push(imageBlock(typeof url === 'string' ? url : '', `${partParam}.image_url.url`));
    } else {
      throw new GatewayError('invalid_request', `${partParam} has type "${part.type}", which Anthropic models do not accept in this message; send text${options.images ? ' or image_url' : ''} parts.`, {
        param: `${partParam}.type`,
      });
    }
  });
  return blocks;
}

function imageBlock(url: string, param: string): ImageBlock {
  if (url.startsWith('data:')) {
    // Scanned with indexOf, not a regex: data URLs run to megabytes.
    const comma = url.indexOf(',');
    const header = comma < 0 ? '' : url.slice(5, comma);
    if (header.endsWith(';base64') && header.startsWith('image/')) {
      return { type: 'image', source: { type: 'base64', media_type: header.slice(0, -';base64'.length), data: url.slice(comma + 1) } };
    }
  } else if (/^https?:\/\//i.test(url)) {
    return { type: 'image', source: { type: 'url', url } };
  }
  throw new GatewayError('invalid_request', `${param} must be an http(s) URL or a base64 data URL such as "data:image/png;base64,...".`, { param });
}

function toolUse(call: ToolCall, param: string): ToolUseBlock {
  let input: unknown;
  try {
    // OpenAI clients send "" for tools that take no arguments.
    input = call.function.arguments.trim() ? JSON.parse(call.function.arguments) : {};
  } catch {
    input = undefined;
  }
  if (!input || typeof input !== 'object' || Array.isArray(input)) {
    throw new GatewayError('invalid_request', `${param}.function.arguments must be a JSON object encoded as a string.`, {
      param: `${param}.function.arguments`,
    });
  }
  return { type: 'tool_use', id: call.id, name: call.function.name, input: input as Record<string, unknown> };
}

function toolResult(m: ChatMessage, param: string): ToolResultBlock {
  if (!m.tool_call_id) {
    throw new GatewayError('invalid_request', `${param}.tool_call_id is required: it names the tool call this message answers.`, {
      param: `${param}.tool_call_id`,
    });
  }
  const content = typeof m.content === 'string' ? m.content : contentBlocks(m.content, param, { images: true });
  return { type: 'tool_result', tool_use_id: m.tool_call_id, content };
}
