// x-ratelimit-* on every answer a rate limit applies to (not only on 429s),
// as OpenAI sends them, and a stream's cost as its last line before [DONE].
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startFakeOpenAI, type FakeOpenAI } from '../helpers/fake-openai.js';
import { defaultTestConfig, OTHER_KEY, startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';

// Two limits apply to alpha: its key's and (tighter in requests) its team's.
const LIMITS = `
pricing:
  mock-fast: { input: 1, output: 2, max_output_tokens: 100 }
  gpt-4o-mini: { input: 1, output: 2, max_output_tokens: 100 }
rate_limits:
  - { name: alpha-key, scope: key, match: [alpha], requests_per_minute: 50, tokens_per_minute: 100000 }
  - { name: alpha-team, scope: team, match: [team-alpha], requests_per_minute: 40 }
`;

for (const kind of ['memory', 'redis'] as const) {
  describe(`rate limit headers (${kind} store)`, () => {
    let redis: TestRedis | undefined;
    let upstream: FakeOpenAI;
    let gw: TestGateway;
    before(async () => {
      if (kind === 'redis') redis = await startRedis();
      upstream = await startFakeOpenAI();
      const store = redis ? `redis: { url: "${redis.url}", key_prefix: rl-headers }\n` : '';
      gw = await startTestGateway({ yaml: defaultTestConfig({ openaiUrl: upstream.url }) + store + LIMITS });
    });
    after(async () => {
      await gw?.close();
      await upstream?.close();
      await redis?.stop();
    });

    it('rate limit headers – every answer under a limit says the tightest limit, what is left (this request counted) and when it is whole again', async () => {
      const client = gw.client();
      const seen: number[] = [];
      for (let i = 0; i < 3; i++) {
        const { response } = await client.chat.completions.create({ model: 'fast', messages: [{ role: 'user', content: `hi ${i}` }] }).withResponse();
        const h = response.headers;
        assert.equal(h.get('x-ratelimit-limit-requests'), '40', 'the team limit is the tighter one');
        seen.push(Number(h.get('x-ratelimit-remaining-requests')));
        assert.match(h.get('x-ratelimit-reset-requests') ?? '', /^(\d+ms|\d+(\.\d+)?s|\d+m\d+(\.\d+)?s)$/);
        assert.equal(h.get('x-ratelimit-limit-tokens'), '100000');
        const tokensLeft = Number(h.get('x-ratelimit-remaining-tokens'));
        assert.ok(tokensLeft < 100000 && tokensLeft > 99000, String(tokensLeft));
        assert.match(h.get('x-ratelimit-reset-tokens') ?? '', /^\d/);
      }
      // Settlement of one request may still be running as the next arrives: each is at most one below the last.
      assert.equal(seen[0], 39);
      assert.ok(seen[1]! <= 38 && seen[2]! <= seen[1]! - 1, seen.join(', '));
    });

    it('rate limit headers – a stream carries them too, and the SDK reads the whole stream', async () => {
      const stream = await gw.client().chat.completions.create({ model: 'fast', stream: true, stream_options: { include_usage: true }, messages: [{ role: 'user', content: 'stream please' }] }).withResponse();
      assert.equal(stream.response.headers.get('x-ratelimit-limit-requests'), '40');
      assert.ok(Number(stream.response.headers.get('x-ratelimit-remaining-requests')) < 40);
      let text = '';
      let usage: { total_tokens: number } | null | undefined;
      for await (const chunk of stream.data) {
        text += chunk.choices[0]?.delta.content ?? '';
        if (chunk.usage) usage = chunk.usage;
      }
      assert.ok(text.length > 0);
      assert.ok(usage && usage.total_tokens > 0);
    });

    it('rate limit headers – a key no limit applies to gets none', async () => {
      const { response } = await gw.client(OTHER_KEY).chat.completions.create({ model: 'fast', messages: [{ role: 'user', content: 'hi' }] }).withResponse();
      assert.equal(response.headers.get('x-ratelimit-limit-requests'), null);
      assert.equal(response.headers.get('x-ratelimit-remaining-tokens'), null);
    });

    it('stream cost – the last line before [DONE] is an SSE comment with the cost the audit record keeps', async () => {
      const res = await fetch(`${gw.baseURL}/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${OTHER_KEY}` },
        body: JSON.stringify({ model: 'fast', stream: true, messages: [{ role: 'user', content: 'what does it cost?' }] }),
      });
      assert.equal(res.status, 200);
      const id = res.headers.get('x-request-id')!;
      const body = await res.text();
      const m = /\n: x-gateway-cost-usd=(\d+\.\d{6})\n\ndata: \[DONE\]\n\n$/.exec(body);
      assert.ok(m, body.slice(-300));
      const deadline = Date.now() + 5000;
      let record: { cost: { nano_usd: number } | null } | undefined;
      while (!record && Date.now() < deadline) {
        record = (await gw.auditRecords()).find((r) => r.id === id) as typeof record;
        if (!record) await new Promise((r) => setTimeout(r, 25));
      }
      assert.ok(record?.cost && record.cost.nano_usd > 0);
      assert.equal(m[1], (record.cost.nano_usd / 1e9).toFixed(6));
    });
  });
}
