// A stream's cost, told to the client. It cannot be a header (those left
// before it was known) and trailers are unreliable through proxies and
// clients, so it is the last thing a clean stream sends: an SSE comment,
// `: x-gateway-cost-usd=0.000123`, which SSE parsers (the OpenAI and
// Anthropic SDKs' included) skip. Every stream has it: chat's before [DONE],
// the Responses API's after its terminal event, Anthropic's after
// message_stop. A cache hit says 0.
import { formatUsd, priceRequest } from '../budget/pricing.js';
import type { RequestContext } from '../pipeline/context.js';

export function costComment(ctx: RequestContext): string {
  if (!ctx.cost) priceRequest(ctx);
  return ctx.cost ? `: x-gateway-cost-usd=${formatUsd(ctx.cost.nano)}\n\n` : '';
}
