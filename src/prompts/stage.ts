// Pipeline stage: renders a prompt template when the request names one.
//
// An app names a template with `model: "prompt:triage"` (or
// "prompt:triage@v12"), a `prompt: {id, version?, variables}` body field, or
// an `x-gateway-prompt: triage[@v12]` header, and sends only variables
// (`prompt.variables` or `variables`). The pin decides the version (per app,
// with an optional canary share); exact versions only where the pin allows.
// Every problem is a 4xx before anything is rendered, so a request never goes
// upstream half-rendered.
//
// It runs right after the body is parsed, so the lane's detectors scan the
// rendered prompt and routing, cache keys and budgets see the real request.
import type { ChatRequest } from '../api/schemas.js';
import { GatewayError } from '../errors.js';
import type { RequestContext } from '../pipeline/context.js';
import { choosePinned, exactAllowed, splitFor, type PinChoice } from './catalog.js';
import { applyTemplate, renderMessages, shadowBody } from './render.js';
import { ARTIFACT_NAME, VERSION } from './schema.js';
import { bindVariables } from './variables.js';

/** What the request context records of a rendered template (ctx.prompt). */
export const PROMPT_MODEL_PREFIX = 'prompt:';
export const PROMPT_HEADER = 'x-gateway-prompt';
export const PROMPT_VERSION_HEADER = 'x-gateway-prompt-version';

interface Reference {
  name: string;
  version: string | undefined;
  /** Where the name came from, for error params. */
  param: string;
}

function parseReference(text: string, param: string): Reference {
  const at = text.indexOf('@');
  const name = at < 0 ? text : text.slice(0, at);
  const version = at < 0 ? undefined : text.slice(at + 1);
  if (!ARTIFACT_NAME.test(name) || (version !== undefined && !VERSION.test(version))) {
    const what = param === PROMPT_HEADER ? `The ${PROMPT_HEADER} header` : `"${text}"`;
    throw new GatewayError('invalid_request', `${what} is not a prompt reference; use <name> or <name>@<version>, e.g. "triage" or "triage@v12".`, { param });
  }
  return { name, version, param };
}

/**
 * How an error names a template or version the catalogue does not know.
 * Errors never repeat a header's text (it is logged, audited and shown in
 * consoles), so a reference from x-gateway-prompt is named by where it came from.
 */
function named(ref: Reference): string {
  return ref.param === PROMPT_HEADER ? `named in ${PROMPT_HEADER}` : `"${ref.name}"`;
}

function referenceOf(ctx: RequestContext, chat: ChatRequest): Reference | undefined {
  const refs: Reference[] = [];
  if (chat.model.startsWith(PROMPT_MODEL_PREFIX)) refs.push(parseReference(chat.model.slice(PROMPT_MODEL_PREFIX.length), 'model'));
  const field = (chat as { prompt?: unknown }).prompt;
  if (field !== undefined) {
    const p = field as { id?: unknown; version?: unknown } | null;
    if (!p || typeof p !== 'object' || Array.isArray(p) || typeof p.id !== 'string' || (p.version !== undefined && typeof p.version !== 'string')) {
      throw new GatewayError('invalid_request', 'prompt must be an object {"id": "<template>", "version"?: "<version>", "variables"?: {...}}.', { param: 'prompt' });
    }
    refs.push(parseReference(p.version === undefined ? p.id : `${p.id}@${p.version}`, 'prompt.id'));
  }
  const header = ctx.headers[PROMPT_HEADER];
  if (typeof header === 'string' && header.trim() !== '') refs.push(parseReference(header.trim(), PROMPT_HEADER));
  const first = refs[0];
  if (!first) return undefined;
  for (const r of refs.slice(1)) {
    if (r.name !== first.name || (r.version !== undefined && first.version !== undefined && r.version !== first.version)) {
      const [a, b] = [first, r].map((ref) => (ref.param === PROMPT_HEADER ? `one in ${ref.param}` : `${describe(ref)} in ${ref.param}`));
      throw new GatewayError('invalid_request', `The request names two different prompts (${a}, ${b}); name it once.`, { param: r.param });
    }
  }
  return { name: first.name, version: refs.find((r) => r.version !== undefined)?.version, param: first.param };
}

function describe(r: Reference): string {
  return r.version === undefined ? r.name : `${r.name}@${r.version}`;
}

function variablesOf(chat: ChatRequest): { value: unknown; param: string } {
  const inPrompt = ((chat as { prompt?: { variables?: unknown } }).prompt ?? {}).variables;
  const top = (chat as { variables?: unknown }).variables;
  if (inPrompt !== undefined && top !== undefined) {
    throw new GatewayError('invalid_request', 'Variables are sent twice (prompt.variables and variables); send them once.', { param: 'variables' });
  }
  return inPrompt !== undefined ? { value: inPrompt, param: 'prompt.variables' } : { value: top, param: 'variables' };
}

export function renderPrompt(ctx: RequestContext): void {
  const chat = ctx.chat;
  if (!chat) return;
  const ref = referenceOf(ctx, chat);
  if (!ref) {
    // The schema lets template requests leave messages out; anything else needs them.
    if (chat.messages.length === 0) throw new GatewayError('invalid_request', 'Invalid request: messages: messages must hold at least one message', { param: 'messages' });
    return;
  }
  const catalog = ctx.config.prompts;
  const versions = catalog.templates.get(ref.name);
  if (!versions) {
    throw new GatewayError('model_not_found', `There is no prompt template ${named(ref)} on this gateway; check the name (prompt:<name>[@<version>]).`, { param: ref.param });
  }
  // Requests the gateway makes itself (evals, shadow runs) may name any version and never sample shadows of their own.
  const purpose = ctx.internal;
  const pin = catalog.pins.get(ref.name);
  const split = pin && splitFor(pin, ctx.key?.app);
  let choice: PinChoice;
  if (ref.version !== undefined) {
    if (!versions.has(ref.version)) {
      throw new GatewayError('model_not_found', `The prompt template "${ref.name}" has no version ${ref.param === PROMPT_HEADER ? `named in ${PROMPT_HEADER}` : `"${ref.version}"`}.`, { param: ref.param });
    }
    if (!purpose && !(split && exactAllowed(split, ref.version))) {
      throw new GatewayError('permission_denied', `Exact versions of the prompt "${ref.name}" cannot be requested here; call "prompt:${ref.name}" to get the pinned version (or allow it with exact_versions in the pins file).`, {
        param: ref.param,
      });
    }
    choice = { version: ref.version, variant: 'exact', shadow: undefined };
  } else {
    if (!split) throw new GatewayError('model_not_found', `The prompt template "${ref.name}" is not pinned to a version on this gateway (pins file: add "${ref.name}: <version>").`, { param: ref.param });
    choice = choosePinned(split);
    if (purpose) choice.shadow = undefined;
  }
  const template = versions.get(choice.version)!;
  if (ctx.key?.models && !ctx.key.models.has(template.model)) {
    throw new GatewayError('model_not_found', `The prompt "${ref.name}" runs on the model "${template.model}", which your key cannot use.`, { param: ref.param });
  }

  const sent = variablesOf(chat);
  const bound = bindVariables(template.variables, sent.value);
  if (!bound.ok) {
    const where = (name: string) => (name ? `${sent.param}.${name}` : sent.param);
    const [first, ...more] = bound.problems;
    const tail = more.length > 0 ? ` (and ${more.length} more: ${more.slice(0, 3).map((p) => `${where(p.name)} ${p.message}`).join('; ')})` : '';
    throw new GatewayError('invalid_request', `Invalid variables for the prompt ${ref.name}@${template.version}: ${where(first!.name)} ${first!.message}${tail}`, { param: where(first!.name) });
  }
  if (chat.messages.length > 0 && !template.acceptsMessages) {
    throw new GatewayError('invalid_request', `The prompt template ${ref.name}@${template.version} builds the messages itself; send only variables (a template with accepts_messages: true appends yours).`, {
      param: 'messages',
    });
  }

  // Sampled for a shadow run: keep the request as the app sent it, before it is rendered.
  const original = choice.shadow !== undefined ? { ...(chat as Record<string, unknown>) } : undefined;
  const replaced = applyTemplate(chat, template, renderMessages(template, bound.values));
  ctx.requestedModel = template.model;
  const variant = purpose ?? choice.variant;
  ctx.prompt = { name: ref.name, version: template.version, variant, ...(choice.variant === 'canary' ? { canary: true } : {}) };
  ctx.responseHeaders[PROMPT_VERSION_HEADER] = `${ref.name}@${template.version}`;
  if (replaced.length > 0) ctx.responseHeaders['x-gateway-prompt-overridden'] = replaced.join(', ');
  ctx.events.push({ stage: 'prompt', prompt: ref.name, version: template.version, variant, ...(replaced.length > 0 ? { overridden: replaced } : {}) });
  if (purpose !== 'eval') ctx.services.metrics.promptRequests.labels(ref.name, template.version, variant).inc();

  if (original && ctx.services.prompts?.shadow) {
    const body = shadowBody(original, `${PROMPT_MODEL_PREFIX}${ref.name}@${choice.shadow}`, sent.value);
    // Handed over by the after phase, once the reply is out: the shadow never competes with it.
    ctx.shadowPlan = { prompt: ref.name, liveVersion: template.version, shadowVersion: choice.shadow!, body, variables: sent.value };
  }
}

/** After stage: hands a sampled request's shadow run to the runner's queue. */
export function startShadowRun(ctx: RequestContext): void {
  if (ctx.shadowPlan) ctx.services.prompts?.shadow.afterLive(ctx, ctx.shadowPlan);
}
