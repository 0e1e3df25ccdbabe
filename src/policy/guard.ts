// Pipeline stage after the provider answered: the tool-call guard, draft-first
// approvals and restoring redacted values, for JSON and streamed replies. A
// stream's content passes through as it arrives, and so do the arguments of a
// tool call its name alone lets through; a call whose verdict needs its
// arguments (a recipients rule), or that is held or blocked, is held back
// until complete and judged whole. Every chat reply is guarded, whatever the
// lane: a call to a tool the request did not offer never reaches the app.
import { mergeToolCallPiece, type ToolCallParts } from '../api/assemble.js';
import type { ChatChunk, ChatCompletion, ToolCall, ToolCallDelta } from '../api/schemas.js';
import type { RequestContext } from '../pipeline/context.js';
import type { JsonReply } from '../pipeline/stage.js';
import { newApprovalId } from './approvals.js';
import { toolKey, type ToolKey } from './tool-name.js';
import { judgeToolCall, judgeToolName, type ToolBlockRule } from './tools.js';

/**
 * Reply stage, JSON part: judges the answer's tool calls and restores
 * redactions in place. An answer it changed is no longer the upstream's
 * text, which the reply then stops carrying.
 */
export function guardJsonReply(ctx: RequestContext, reply: JsonReply): Promise<void> | undefined {
  // Every ingress with a chat form (chat, Messages) is judged; embeddings have no answer to judge.
  if (!ctx.policy || !ctx.chat) return undefined;
  const completion = reply.body as ChatCompletion;
  // Nothing to restore and no tool call to judge: the answer stays as it is, with no await.
  if (!ctx.policy.restore && !completion.choices.some((c) => c.message.tool_calls?.length)) return undefined;
  return guardCompletion(ctx, completion).then((changed) => {
    if (changed) reply.text = undefined;
  });
}

/** Reply stage, stream part: content flows, tool calls are relayed or held and judged whole. */
export function guardStreamReply(ctx: RequestContext, chunks: AsyncIterable<ChatChunk>): AsyncIterable<ChatChunk> {
  if (!ctx.policy || !ctx.chat) return chunks;
  return guardStream(ctx, chunks);
}

interface Outcome {
  approvals: Array<{ id: string; tool: string; status: 'pending' }>;
  blocked_tool_calls: Array<{ tool: string; rule: ToolBlockRule; reason: string }>;
}

/** The tools the request offered once the lane's policy ran (stripping included), by canonical name. */
function offeredTools(ctx: RequestContext): Set<ToolKey> {
  return new Set(ctx.chat?.tools?.map((t) => toolKey(t.function.name)));
}

/** Judges calls; returns the ones the app may run. */
async function judgeCalls(ctx: RequestContext, calls: ToolCall[], outcome: Outcome): Promise<ToolCall[]> {
  const policy = ctx.policy!;
  const lane = policy.lane;
  const offered = offeredTools(ctx);
  const kept: ToolCall[] = [];
  for (const call of calls) {
    if (policy.restore) call.function.arguments = restoreText(call.function.arguments, policy.restore);
    const name = call.function.name;
    const verdict = judgeToolCall(lane, { name, key: toolKey(name), args: call.function.arguments }, offered);
    const metric = ctx.services.metrics.toolCalls;
    if (verdict.outcome === 'pass') {
      metric.labels(lane.name, 'passed', 'allowed').inc();
      kept.push(call);
    } else if (verdict.outcome === 'block') {
      metric.labels(lane.name, 'blocked', verdict.rule).inc();
      // The name as the model wrote it: the record shows what was attempted.
      const blocked = { tool: name, rule: verdict.rule, reason: verdict.reason };
      outcome.blocked_tool_calls.push(blocked);
      policy.blockedToolCalls.push({ ...blocked });
    } else {
      metric.labels(lane.name, 'held', 'require_approval').inc();
      const id = newApprovalId();
      await ctx.services.approvals.create({
        id,
        status: 'pending',
        created_at: new Date().toISOString(),
        decided_at: null,
        decided_by: null,
        reason: null,
        request_id: ctx.id,
        key_id: ctx.key!.id,
        app: ctx.key!.app,
        team: ctx.key!.team,
        lane: lane.name,
        model: ctx.requestedModel ?? '',
        tool: call.function.name,
        tool_call_id: call.id,
        arguments: call.function.arguments,
      });
      outcome.approvals.push({ id, tool: call.function.name, status: 'pending' });
      policy.approvals.push({ id, tool: call.function.name });
    }
  }
  return kept;
}

/** Judges and restores in place; true when the answer changed. */
async function guardCompletion(ctx: RequestContext, completion: ChatCompletion): Promise<boolean> {
  const restore = ctx.policy!.restore;
  const outcome: Outcome = { approvals: [], blocked_tool_calls: [] };
  let changed = false;
  for (const choice of completion.choices) {
    const message = choice.message;
    if (restore && typeof message.content === 'string') {
      const content = restoreText(message.content, restore);
      if (content !== message.content) {
        message.content = content;
        changed = true;
      }
    }
    if (!message.tool_calls?.length) continue;
    const calls = message.tool_calls;
    const args = restore ? calls.map((c) => c.function.arguments) : undefined;
    const kept = await judgeCalls(ctx, calls, outcome);
    if (kept.length < calls.length || args?.some((a, i) => a !== calls[i]!.function.arguments)) changed = true;
    if (kept.length > 0) message.tool_calls = kept;
    else {
      delete message.tool_calls;
      if (choice.finish_reason === 'tool_calls') choice.finish_reason = 'stop';
    }
  }
  if (outcome.approvals.length > 0 || outcome.blocked_tool_calls.length > 0) {
    changed = true;
    completion.gateway = outcome;
    if (outcome.approvals.length > 0) ctx.responseHeaders['x-gateway-approvals'] = outcome.approvals.map((a) => a.id).join(',');
    if (outcome.blocked_tool_calls.length > 0) ctx.responseHeaders['x-gateway-tool-calls-blocked'] = String(outcome.blocked_tool_calls.length);
  }
  return changed;
}

interface PendingCall extends ToolCallParts {
  /** Set once the call's name has passed on its own: its argument pieces then flow as they arrive. */
  relay?: { index: number; tail: string };
}

/** A choice's tool calls in flight: the model's, by its index, and how many went to the app as they arrived. */
interface ChoiceCalls {
  calls: Map<number, PendingCall>;
  relayed: number;
}

async function* guardStream(ctx: RequestContext, chunks: AsyncIterable<ChatChunk>): AsyncGenerator<ChatChunk> {
  const restore = ctx.policy!.restore;
  const pending = new Map<number, ChoiceCalls>();
  const held = new Map<number, string>(); // choice -> content held back (a possibly split placeholder)
  let last: ChatChunk | undefined;

  for await (const chunk of chunks) {
    last = chunk;
    for (const choice of chunk.choices) {
      const delta = choice.delta;
      if (restore && typeof delta?.content === 'string') {
        const [ready, tail] = restorePartial((held.get(choice.index) ?? '') + delta.content, restore);
        held.set(choice.index, tail);
        delta.content = ready;
      }
      if (delta?.tool_calls) {
        const relayed = relayDeltas(ctx, pending, choice.index, delta.tool_calls);
        if (relayed.length > 0) delta.tool_calls = relayed;
        else delete delta.tool_calls;
      }
      if (choice.finish_reason) {
        const tail = held.get(choice.index);
        if (tail) {
          delta.content = (delta.content ?? '') + restoreText(tail, restore!);
          held.delete(choice.index);
        }
        yield* flushCalls(ctx, chunk, choice.index, pending, choice);
      }
    }
    // Chunks that only carried held tool-call pieces are swallowed until the call is whole.
    if (chunk.choices.length > 0 && chunk.choices.every((c) => isEmptyDelta(c.delta) && !c.finish_reason)) continue;
    yield chunk;
  }
  // A stream that ended without a finish_reason still releases what it held.
  if (last) {
    for (const [index, tail] of held) {
      if (tail) yield { ...last, choices: [{ index, delta: { content: restoreText(tail, restore!) }, finish_reason: null }], usage: undefined };
    }
    for (const index of [...pending.keys()]) yield* flushCalls(ctx, last, index, pending, undefined);
  }
}

/**
 * Collects a chunk's tool-call pieces and returns what the app may see now.
 * A call whose verdict its name decides (offered, allowed, no approval and no
 * recipients rule in the lane) is relayed from its first argument piece on:
 * the name is whole by then, as providers send it before the arguments. Every
 * other call is held until the choice finishes and judged whole.
 */
function relayDeltas(ctx: RequestContext, pending: Map<number, ChoiceCalls>, choice: number, deltas: ToolCallDelta[]): ToolCallDelta[] {
  let state = pending.get(choice);
  if (!state) pending.set(choice, (state = { calls: new Map(), relayed: 0 }));
  const out: ToolCallDelta[] = [];
  const restore = ctx.policy!.restore;
  for (const d of deltas) {
    let call = state.calls.get(d.index);
    if (!call) state.calls.set(d.index, (call = { id: '', name: '', args: '' }));
    const piece = d.function?.arguments ?? '';
    if (call.relay) {
      if (piece) out.push({ index: call.relay.index, function: { arguments: relayArguments(call.relay, piece, restore) } });
      continue;
    }
    mergeToolCallPiece(call, d);
    if (!piece || !call.name) continue;
    const policy = ctx.policy!;
    const verdict = judgeToolName(policy.lane, { name: call.name, key: toolKey(call.name) }, offeredTools(ctx));
    if (verdict?.outcome !== 'pass') continue;
    ctx.services.metrics.toolCalls.labels(policy.lane.name, 'passed', 'allowed').inc();
    call.relay = { index: state.relayed++, tail: '' };
    const args = relayArguments(call.relay, call.args, restore);
    out.push({ index: call.relay.index, id: call.id, type: 'function', function: { name: call.name, arguments: args } });
  }
  return out;
}

/** Restores redacted values in an argument piece, holding back a possibly split placeholder. */
function relayArguments(relay: { tail: string }, piece: string, restore: ReadonlyMap<string, string> | undefined): string {
  if (!restore) return piece;
  const [ready, tail] = restorePartial(relay.tail + piece, restore);
  relay.tail = tail;
  return ready;
}

async function* flushCalls(
  ctx: RequestContext,
  template: ChatChunk,
  index: number,
  pending: Map<number, ChoiceCalls>,
  finishing: ChatChunk['choices'][number] | undefined,
): AsyncGenerator<ChatChunk> {
  const state = pending.get(index);
  pending.delete(index);
  if (!state || state.calls.size === 0) return;
  const base = { id: template.id, object: template.object, created: template.created, model: template.model };
  const restore = ctx.policy!.restore;
  const tails: ToolCallDelta[] = [];
  const whole: ToolCall[] = [];
  for (const c of state.calls.values()) {
    if (c.relay) {
      if (c.relay.tail) tails.push({ index: c.relay.index, function: { arguments: restoreText(c.relay.tail, restore!) } });
    } else {
      whole.push({ id: c.id, type: 'function', function: { name: c.name, arguments: c.args } });
    }
  }
  if (tails.length > 0) yield { ...base, choices: [{ index, delta: { tool_calls: tails }, finish_reason: null }] };
  const outcome: Outcome = { approvals: [], blocked_tool_calls: [] };
  const kept = await judgeCalls(ctx, whole, outcome);
  if (kept.length > 0) {
    yield {
      ...base,
      choices: [
        {
          index,
          delta: { tool_calls: kept.map((c, i) => ({ index: state.relayed + i, id: c.id, type: 'function' as const, function: { name: c.function.name, arguments: c.function.arguments } })) },
          finish_reason: null,
        },
      ],
    };
  } else if (state.relayed === 0 && finishing?.finish_reason === 'tool_calls') {
    finishing.finish_reason = 'stop';
  }
  if (outcome.approvals.length > 0 || outcome.blocked_tool_calls.length > 0) {
    yield { ...base, choices: [{ index, delta: {}, finish_reason: null }], gateway: outcome };
  }
}

function isEmptyDelta(delta: ChatChunk['choices'][number]['delta'] | undefined): boolean {
  if (!delta) return true;
  for (const key in delta) {
    const v = delta[key];
    if (v !== undefined && v !== null && v !== '') return false;
  }
  return true;
}

const PLACEHOLDER = /\[[A-Z0-9_]{1,40}_\d{1,6}\]/g;

export function restoreText(text: string, restore: ReadonlyMap<string, string>): string {
  if (!text.includes('[')) return text;
  return text.replace(PLACEHOLDER, (m) => restore.get(m) ?? m);
}

/** Restores what it can and holds back a trailing piece that may be the start of a placeholder. */
function restorePartial(text: string, restore: ReadonlyMap<string, string>): [string, string] {
  const open = text.lastIndexOf('[');
  if (open >= 0 && text.indexOf(']', open) < 0 && text.length - open <= 50) {
    return [restoreText(text.slice(0, open), restore), text.slice(open)];
  }
  return [restoreText(text, restore), ''];
}
