// Prompt-cache tokens are priced at their own rates: Anthropic reads at 0.1x
// input and writes at 1.25x by default, OpenAI-style cached input at 0.5x,
// and a configured price overrides either.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { costNano, createPriceBook } from '../../src/budget/pricing.js';
import type { Deployment } from '../../src/providers/types.js';

const deployment = (type: 'anthropic' | 'openai', model: string) => ({ id: `${type}/${model}`, providerName: type, provider: { type }, model }) as unknown as Deployment;

// 1M uncached, 1M read, 1M written, 1M out: the cost in nano-USD is the sum of the four rates × 1e9 / 1e6.
const usage = { prompt_tokens: 3_000_000, completion_tokens: 1_000_000, prompt_tokens_details: { cached_tokens: 1_000_000, cache_write_tokens: 1_000_000 } };

describe('cache pricing', () => {
  it('cache pricing – Anthropic defaults: read 0.1x, write 1.25x of input', () => {
    const book = createPriceBook({ 'claude-x': { input: 4, output: 20, per_request: 0, max_output_tokens: 100, batch_discount: 0 } });
    const price = book.priceOf(deployment('anthropic', 'claude-x'));
    assert.equal(price.cachedInput, 0.4);
    assert.equal(price.cacheWrite, 5);
    assert.equal(costNano(price, usage), (4 + 0.4 + 5 + 20) * 1e9);
  });

  it('cache pricing – OpenAI-style defaults: cached input 0.5x, no write surcharge', () => {
    const book = createPriceBook({ 'gpt-x': { input: 2, output: 8, per_request: 0, max_output_tokens: 100, batch_discount: 0 } });
    const price = book.priceOf(deployment('openai', 'gpt-x'));
    assert.equal(costNano(price, usage), (2 + 1 + 2 + 8) * 1e9);
  });

  it('cache pricing – configured cache_read and cache_write win over the defaults', () => {
    const book = createPriceBook({ 'claude-y': { input: 4, output: 20, cache_read: 1, cache_write: 6, per_request: 0, max_output_tokens: 100, batch_discount: 0 } });
    assert.equal(costNano(book.priceOf(deployment('anthropic', 'claude-y')), usage), (4 + 1 + 6 + 20) * 1e9);
  });

  it('cache pricing – cache counts larger than the prompt are bounded by it', () => {
    const book = createPriceBook({ 'claude-z': { input: 1, output: 0, per_request: 0, max_output_tokens: 100, batch_discount: 0 } });
    const price = book.priceOf(deployment('anthropic', 'claude-z'));
    const nano = costNano(price, { prompt_tokens: 10, completion_tokens: 0, prompt_tokens_details: { cached_tokens: 50, cache_write_tokens: 50 } });
    assert.equal(nano, Math.round(10 * 0.1 * 1000));
  });
});
