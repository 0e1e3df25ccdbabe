// Metering a stream as it flows: its budgets' reservation grows in slices
// ahead of the output, and a stream that ends without the provider's usage
// is charged for what it delivered. Each is a plain function of the request
// and its chunks or text, so whatever wires the reply's stream calls them.
import type { ChatChunk, ChatRequest } from '../api/schemas.js';
import { GatewayError } from '../errors.js';
import type { RequestContext } from '../pipeline/context.js';
import { countUsage } from '../providers/usage.js';
import { costNano } from './pricing.js';
import type { Amount } from './store.js';

/**
 * Passes the chunks on, first extending the budgets' reservation (held in
 * ctx.budget) a slice at a time so that it stays ahead of the output; a
 * budget with no room left ends the stream with budget_exceeded.
 */
export async function* meterStream(ctx: RequestContext, chunks: AsyncIterable<ChatChunk>): AsyncGenerator<ChatChunk> {
  const hold = ctx.budget!;
  const limits = ctx.config.limits;
  const cap = (ctx.chat?.max_completion_tokens ?? ctx.chat?.max_tokens ?? hold.price.maxOutputTokens) * (ctx.chat?.n ?? 1);
  let bytes = 0;
  for await (const chunk of chunks) {
    for (const choice of chunk.choices) {
      const d = choice.delta;
      if (d?.content) bytes += Buffer.byteLength(d.content);
      if (d?.tool_calls) for (const t of d.tool_calls) bytes += Buffer.byteLength(t.function?.arguments ?? '') + (t.function?.name?.length ?? 0);
    }
    // A token is at least one byte, so bytes bound the tokens so far: the reservation never falls behind.
    const bound = Math.min(bytes, cap);
    while (bound > hold.reservedOutput && hold.reservedOutput < cap) {
      const step = Math.min(limits.streamSliceTokens, cap - hold.reservedOutput);
      const extra: Amount = { usd: costNano(hold.price, { prompt_tokens: 0, completion_tokens: step }), tokens: step, requests: 0 };
      const checks = hold.budgetChecks.map((c) => ({ ...c, amount: extra }));
      const result = await hold.store.reserve(hold.reservation, checks, Date.now() + limits.reservationTtlMs, Date.now()).catch(() => ({ ok: false as const, reset: true as const }));
      if (!result.ok) {
        ctx.services.metrics.limitRefusals.labels('budget', result.reset ? 'store' : (hold.names[result.index] ?? 'budget')).inc();
        throw new GatewayError('budget_exceeded', `The stream was stopped: budget ${result.reset ? '' : `"${hold.names[result.index]}" `}has no room for more output.`);
      }
      hold.reservedOutput += step;
    }
    yield chunk;
  }
}

/**
 * Charges a stream that ended without the provider's usage (the client left,
 * a limit stopped it, the provider broke off) for what was delivered: its
 * prompt and `delivered`, the text sent, counted with tiktoken.
 */
export async function chargeDelivered(ctx: RequestContext, chat: ChatRequest, delivered: string): Promise<void> {
  try {
    // The response is over: the count may wait for the worker rather than stall other requests.
    ctx.usage = await countUsage(chat, delivered, { offThread: true });
  } catch (err) {
    // Never silent: the request then settles at no cost, and this says so.
    ctx.services.logger.error({ err: String(err), requestId: ctx.id }, 'tokens of an unfinished stream could not be counted; it is charged nothing');
  }
}
