// The Anthropic Messages ingress's own stages. The request is parsed into the
// same context as a chat request (`ctx.chat`, which every governance stage
// works on) plus the Messages request itself (`ctx.native`), which an
// Anthropic upstream gets instead of a translation. After the lane policy,
// `carryPolicyToNative` applies the policy's decisions (redactions, stripped
// tools) to that copy too, so the two never disagree about what may leave.
import type { Reply, RequestContext } from '../../pipeline/context.js';
import type { NativeRequest } from '../../providers/types.js';
import { parseCountTokensRequest, parseMessagesRequest } from './parse.js';
import { countMessagesTokens } from './count-tokens.js';
import type { CountTokensRequest, MessagesBlock, MessagesRequest } from './schema.js';
import { messagesToChat, unsupportedError, type UnsupportedFeature } from './to-chat.js';

/** The Anthropic headers an Anthropic upstream gets as the app sent them. */
const PASSED_HEADERS = ['anthropic-version', 'anthropic-beta'] as const;

export async function parseMessages(ctx: RequestContext): Promise<void> {
  const request = parseMessagesRequest(await ctx.readBody());
  ingest(ctx, request);
  ctx.stream = request.stream === true;
}

export async function parseCountTokens(ctx: RequestContext): Promise<void> {
  const request = parseCountTokensRequest(await ctx.readBody());
  // Counted as a one-token answer would be: the count is of the prompt.
  ingest(ctx, { ...request, max_tokens: 1 });
}

function ingest(ctx: RequestContext, request: MessagesRequest): void {
  const headers: Record<string, string> = {};
  for (const name of PASSED_HEADERS) {
    const value = ctx.headers[name];
    if (typeof value === 'string' && value !== '') headers[name] = value;
  }
  let translated = messagesToChat(request);
  let unsupported: UnsupportedFeature | undefined;
  if (!translated.ok) {
    // Only an Anthropic upstream can serve it (dispatch refuses any other with
    // this 400); governance still needs the chat view of everything it can read.
    unsupported = translated.unsupported;
    translated = messagesToChat(governableView(request));
    if (!translated.ok) throw unsupportedError(translated.unsupported);
  }
  ctx.chat = translated.chat;
  ctx.requestedModel = request.model;
  ctx.native = { provider: 'anthropic', body: request, headers, ...(unsupported ? { unsupported: { param: unsupported.param, message: unsupported.message } } : {}) };
  ctx.messages = { droppedCacheMarkers: translated.droppedCacheMarkers, anthropicHeaders: headers };
}

/**
 * What of a request chat can express, for the lanes, detectors and tool
 * policy to read when the whole request can only go to Anthropic: Anthropic's
 * own tools by name (so the tool policy still judges them), text documents
 * as text, and no sampling fields chat lacks.
 */
function governableView(request: MessagesRequest): MessagesRequest {
  const view: MessagesRequest = { ...request };
  delete view.top_k;
  if (view.stop_sequences) view.stop_sequences = view.stop_sequences.slice(0, 4);
  if (view.tools) view.tools = view.tools.map((t) => ({ name: t.name, ...(typeof t.description === 'string' ? { description: t.description } : {}), input_schema: { type: 'object' as const } }));
  view.messages = request.messages.map((m) => (typeof m.content === 'string' ? m : { ...m, content: m.content.flatMap((b) => governableBlock(b, m.role)) }));
  return view;
}

function governableBlock(b: MessagesBlock, role: 'user' | 'assistant'): MessagesBlock[] {
  if (b.type === 'text' || b.type === 'tool_use' || b.type === 'thinking' || b.type === 'redacted_thinking') return [b];
  if (role === 'user' && b.type === 'image') {
    const source = (b as { source: { type: string } }).source;
    return source.type === 'base64' || source.type === 'url' ? [b] : [];
  }
  if (role === 'user' && b.type === 'tool_result') {
    const content = (b as { content?: unknown }).content;
    if (!Array.isArray(content)) return [b];
    return [{ ...b, content: (content as MessagesBlock[]).filter((c) => c.type === 'text') } as MessagesBlock];
  }
  const source = (b as { source?: { type?: unknown; data?: unknown } }).source;
  if (role === 'user' && b.type === 'document' && source?.type === 'text' && typeof source.data === 'string') return [{ type: 'text', text: source.data }];
  return [];
}

/**
 * After the lane policy: the same redactions and tool decisions on the
 * Messages request an Anthropic upstream gets. A request a prompt template
 * rewrote goes out from its chat form (the template's), translated.
 */
export function carryPolicyToNative(ctx: RequestContext): void {
  const native = ctx.native;
  if (!native) return;
  if (ctx.prompt) {
    if (native.unsupported) throw unsupportedError({ ...native.unsupported, feature: 'prompt' });
    ctx.native = undefined;
    return;
  }
  const policy = ctx.policy;
  if (!policy) return;
  const body = structuredClone(native.body) as MessagesRequest;
  let changed = false;
  if (policy.placeholders && policy.placeholders.size > 0) {
    redactMessages(body, policy.placeholders);
    changed = true;
  }
  if (policy.strippedTools.length > 0 && body.tools) {
    const stripped = new Set(policy.strippedTools);
    body.tools = body.tools.filter((t) => !stripped.has(t.name));
    const choice = body.tool_choice as { type: string; name?: string } | undefined;
    if (body.tools.length === 0) {
      delete body.tools;
      delete body.tool_choice;
    } else if (choice?.type === 'tool' && choice.name && stripped.has(choice.name)) delete body.tool_choice;
    changed = true;
  }
  if (changed) ctx.native = { ...native, body } satisfies NativeRequest;
}

/**
 * Replaces each value the lane redacted with its placeholder wherever the
 * app's text carries it, so the placeholders match the chat form's (and the
 * answer's restoration). Thinking blocks are signed by Anthropic and go as
 * they are: changing them would make the upstream reject the request.
 */
function redactMessages(body: MessagesRequest, placeholders: Map<string, string>): void {
  // Longest first, so a value inside a longer one does not split it.
  const pairs = [...placeholders].sort((a, b) => b[0].length - a[0].length);
  const redact = (text: string) => {
    let out = text;
    for (const [value, placeholder] of pairs) if (out.includes(value)) out = out.split(value).join(placeholder);
    return out;
  };
  if (typeof body.system === 'string') body.system = redact(body.system);
  else body.system?.forEach((b) => (b.text = redact(b.text)));
  for (const m of body.messages) {
    if (typeof m.content === 'string') m.content = redact(m.content);
    else m.content.forEach((b) => redactBlock(b as Record<string, unknown>, redact));
  }
}

function redactBlock(b: Record<string, unknown>, redact: (text: string) => string): void {
  if (b.type === 'thinking' || b.type === 'redacted_thinking') return;
  if (typeof b.text === 'string') b.text = redact(b.text);
  if (b.type === 'tool_use') b.input = redactValue(b.input, redact);
  if (b.type === 'tool_result') {
    if (typeof b.content === 'string') b.content = redact(b.content);
    else if (Array.isArray(b.content)) for (const c of b.content as Array<Record<string, unknown>>) redactBlock(c, redact);
  }
  const source = b.source as Record<string, unknown> | undefined;
  if (b.type === 'document' && source?.type === 'text' && typeof source.data === 'string') source.data = redact(source.data);
}

function redactValue(v: unknown, redact: (text: string) => string): unknown {
  if (typeof v === 'string') return redact(v);
  if (Array.isArray(v)) return v.map((x) => redactValue(x, redact));
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, redactValue(x, redact)]));
  return v;
}

/** Once the request is over: a cache marker a chat upstream could not take is logged and counted, never dropped unseen. */
export function noteDroppedCacheMarkers(ctx: RequestContext): void {
  const dropped = ctx.messages?.droppedCacheMarkers ?? 0;
  const deployment = ctx.deployment;
  if (dropped === 0 || !deployment || deployment.provider.type === 'anthropic') return;
  ctx.services.metrics.cacheMarkersDropped.labels(deployment.providerName).inc(dropped);
  ctx.services.logger.info({ requestId: ctx.id, deployment: deployment.id, dropped }, 'cache_control markers dropped: the upstream does not speak the Messages API');
}

/**
 * count_tokens ends here: the first candidate that can count natively (an
 * Anthropic upstream, its own tokenizer) counts the governed request; when
 * none can, or its count fails, the gateway's estimate answers instead.
 */
export async function countTokens(ctx: RequestContext): Promise<Reply> {
  const native = ctx.native!;
  const counter = ctx.candidates.find((d) => d.provider.type === native.provider && ctx.config.adapters.get(d.providerName)?.countTokens);
  if (counter) {
    try {
      const n = await ctx.config.adapters.get(counter.providerName)!.countTokens!(native, counter, ctx.cancel);
      ctx.deployment = counter;
      return { kind: 'json', status: 200, body: { input_tokens: n } };
    } catch (err) {
      if (ctx.cancel.aborted) throw err;
      ctx.services.logger.warn({ err: String(err), requestId: ctx.id, deployment: counter.id }, 'native token count failed; answering with the estimate');
    }
  }
  const body = await countMessagesTokens(native.body as CountTokensRequest, { signal: ctx.signal });
  return { kind: 'json', status: 200, body };
}
