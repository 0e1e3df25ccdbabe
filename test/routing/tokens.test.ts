// Token counting: the same count in process and on the worker thread, the
// byte bound above it, and a long count that leaves the event loop free.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { get_encoding } from 'tiktoken';
import type { ChatMessage, ChatRequest } from '../../src/api/schemas.js';
import { countMessageTokens, countTextTokens, OFFLOAD_CHARS, promptTokenBound } from '../../src/providers/tokens.js';

const reference = get_encoding('o200k_base');
const tokensOf = (text: string) => reference.encode_ordinary(text).length;

/** What countMessageTokens must return, counted here with tiktoken directly. */
function expected(messages: ChatMessage[]): number {
  let total = 3;
  for (const m of messages) {
    total += 3 + tokensOf(m.role);
    if (typeof m.content === 'string') total += tokensOf(m.content);
    if (m.name) total += 1 + tokensOf(m.name);
    for (const call of m.tool_calls ?? []) total += tokensOf(call.function.name) + tokensOf(call.function.arguments) + 3;
  }
  return total;
}

const prose = (chars: number) => {
  const words = ['Lanegate', 'routes', 'naïve', 'prompts', '到', 'the', 'premium', 'model;', '<|endoftext|>', '42', 'émigré', '\n'];
  let out = '';
  for (let i = 0; out.length < chars; i++) out += `${words[(i * 5 + (i >> 2)) % words.length]} `;
  return out.slice(0, chars);
};

describe('token counting', () => {
  it('tokens – short and long prompts (in process and on the worker) count exactly as tiktoken does', async () => {
    for (const chars of [40, OFFLOAD_CHARS - 100, OFFLOAD_CHARS * 3]) {
      const messages: ChatMessage[] = [
        { role: 'system', content: 'You are terse.' },
        { role: 'user', content: prose(chars), name: 'ana' },
        {
          role: 'assistant',
          content: null,
          tool_calls: [{ id: 'c1', type: 'function', function: { name: 'lookup', arguments: '{"q":"<|im_start|>x"}' } }],
        },
      ] as ChatMessage[];
      const counted = await countMessageTokens(messages);
      assert.equal(counted, expected(messages), `${chars} characters`);
      assert.ok(promptTokenBound({ model: 'm', messages } as ChatRequest) >= counted, 'the byte bound is never below the count');
    }
    const long = prose(OFFLOAD_CHARS * 2);
    assert.equal(await countTextTokens(long), tokensOf(long));
  });

  it('tokens – a bounded count is exact below its bound and stops soon after reaching it (in process and on the worker)', async () => {
    // Lines that start with a word: where a long text may be cut into pieces.
    const lines = (chars: number) => prose(chars).replaceAll('\n ', '\n');
    for (const chars of [OFFLOAD_CHARS - 100, OFFLOAD_CHARS * 3]) {
      const messages = [
        { role: 'system', content: 'You are terse.' },
        { role: 'user', content: lines(chars) },
      ] as ChatMessage[];
      const full = expected(messages);
      assert.ok((messages[1]!.content as string).split('\n').length > 100, 'the text has lines to cut at');
      // Counted in pieces up to a bound just past the total: the pieces add up to the exact count.
      assert.equal(await countMessageTokens(messages, full + 1), full, `${chars} characters, bound past the total`);
      assert.ok((await countMessageTokens(messages, full)) >= full);
      // A low bound: the count stops a piece or two after it, far short of the total.
      const partial = await countMessageTokens(messages, 500);
      assert.ok(partial >= 500 && partial < full / 2, `${chars} characters: stopped at ${partial} of ${full}`);
    }
  });

  it('tokens – several long counts at once each get their own answer', async () => {
    const texts = [prose(OFFLOAD_CHARS * 2), prose(OFFLOAD_CHARS * 2 + 7), `${prose(OFFLOAD_CHARS)} end`];
    const counts = await Promise.all(texts.map((t) => countTextTokens(t)));
    assert.deepEqual(counts, texts.map(tokensOf));
  });

  it('tokens – a long count leaves the event loop free: a timer fires before it finishes', async () => {
    const count = countTextTokens(prose(OFFLOAD_CHARS * 12)).then(() => 'count');
    const timer = new Promise<string>((resolve) => setTimeout(() => resolve('timer'), 1));
    // Counted on the event loop, the count would finish (and win the race) before any timer could run.
    assert.equal(await Promise.race([count, timer]), 'timer');
    assert.equal(await count, 'count');
  });
});
