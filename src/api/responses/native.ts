// Native where it matches: a Responses request to a deployment whose upstream
// speaks the Responses API (an openai provider with `responses_api: true`)
// goes out as the Responses request itself, validated and re-serialised, so
// what chat cannot say about it survives. The governance stages worked on the
// chat translation; what they changed reaches the native request too:
// offered tools they stripped are left out. A request they rewrote in ways
// only chat carries (redactions, a rendered template, the safe-mode model's
// limits) stays translated, so nothing governance did is lost on the way.
import type { RequestContext } from '../../pipeline/context.js';
import type { Deployment, NativeResponsesRequest } from '../../providers/types.js';
import { requestItems } from './conversation.js';
import { unsupportedError } from './to-chat.js';

/**
 * The native request for this deployment, or undefined to send the chat
 * translation. Throws the translation's 400 when the request needs a native
 * upstream (a hosted tool...) and this one is not, or governance rewrote it.
 */
export function nativeResponsesRequest(ctx: RequestContext, deployment: Deployment): NativeResponsesRequest | undefined {
  const turn = ctx.responses;
  if (!turn) return undefined;
  const provider = deployment.provider;
  const chat = ctx.chat;
  const native = provider.type === 'openai' && provider.responses_api && chat === turn.chat && (ctx.policy?.redactions ?? 0) === 0 && !ctx.prompt;
  if (!native || !chat) {
    if (turn.unsupported) throw unsupportedError(turn.unsupported);
    return undefined;
  }
  const r = turn.request;
  const body: Record<string, unknown> = { ...r };
  // The gateway keeps the conversation: the upstream gets it whole and keeps nothing of it.
  delete body.previous_response_id;
  body.input = [...turn.previous, ...requestItems(r)];
  body.store = false;
  if (r.tools) {
    const offered = new Set((chat.tools ?? []).map((t) => t.function.name));
    // Hosted tools went through the tool policy under their type's name.
    body.tools = r.tools.filter((t) => offered.has(t.type === 'function' ? (t as { name: string }).name : t.type));
    const choice = r.tool_choice;
    if (typeof choice === 'object' && choice.type === 'function' && !offered.has((choice as { name: string }).name)) delete body.tool_choice;
  }
  return { body, chat };
}
