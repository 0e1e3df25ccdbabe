// Turns a compiled template and bound variables into the request the rest of
// the pipeline sees. What the template governs replaces what the app sent:
// the model, the messages, tools, tool_choice, response_format and every
// parameter the template sets. Everything else the app sent (stream, user,
// metadata, max_tokens when the template leaves it open...) passes through.
import type { ChatMessage, ChatRequest } from '../api/schemas.js';
import type { CompiledTemplate } from './catalog.js';
import { renderSegments, type TemplateValue } from './template.js';

/** Fields a template always owns, whether it sets them or not. */
const GOVERNED = ['model', 'messages', 'tools', 'tool_choice', 'response_format'] as const;
/** Gateway-only fields, never forwarded upstream. */
const GATEWAY_FIELDS = ['prompt', 'variables'] as const;

export function renderMessages(template: CompiledTemplate, values: Readonly<Record<string, TemplateValue>>): ChatMessage[] {
  const out: ChatMessage[] = new Array(template.messages.length);
  for (let i = 0; i < template.messages.length; i++) {
    const m = template.messages[i]!;
    const content = m.constant ?? renderSegments(m.segments, values);
    out[i] = m.name === undefined ? { role: m.role, content } : { role: m.role, content, name: m.name };
  }
  return out;
}

/**
 * Applies a rendered template to the request in place and returns the names
 * of fields the app sent that the template replaced (for a response header).
 */
export function applyTemplate(chat: ChatRequest, template: CompiledTemplate, messages: ChatMessage[]): string[] {
  const fields = JSON.parse(template.fieldsJson) as Record<string, unknown>;
  const body = chat as Record<string, unknown>;
  const replaced: string[] = [];
  for (const key of GOVERNED) {
    if (key === 'model' || key === 'messages') continue;
    if (!(key in body)) continue;
    if (body[key] !== undefined && !(key in fields)) replaced.push(key);
    delete body[key];
  }
  for (const [key, value] of Object.entries(fields)) {
    const sent = body[key];
    if (sent !== undefined && sent !== null && !sameValue(sent, value)) replaced.push(key);
    body[key] = value;
  }
  for (const key of GATEWAY_FIELDS) if (key in body) delete body[key];
  chat.model = template.model;
  chat.messages = template.acceptsMessages && chat.messages.length > 0 ? [...messages, ...chat.messages] : messages;
  return replaced;
}

function sameValue(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object') return false;
  return JSON.stringify(a) === JSON.stringify(b);
}

/**
 * The request a shadow run sends: the app's request as it came, calling the
 * shadow version instead, never streamed (its answer is only recorded).
 */
export function shadowBody(original: Readonly<Record<string, unknown>>, reference: string, variables: unknown): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(original)) {
    if (key === 'model' || key === 'stream' || key === 'stream_options' || (GATEWAY_FIELDS as readonly string[]).includes(key)) continue;
    out[key] = value;
  }
  out.model = reference;
  if (variables !== undefined) out.variables = variables;
  return out;
}
