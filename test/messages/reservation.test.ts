// Budget reservations for Messages requests: a request with cache_control
// markers may have its whole prompt written to Anthropic's prompt cache, which
// costs more than plain input (1.25x by default), so its worst case is priced
// at that rate: a reservation never holds less than the request may cost.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startFakeAnthropic, type FakeAnthropic } from '../helpers/fake-anthropic.js';
import { ADMIN_KEY, APP_KEY, defaultTestConfig, startTestGateway, type TestGateway } from '../helpers/gateway.js';

const MODELS = `models:
  claude-sonnet-4-5: { deployments: [{ provider: fakeanthropic, model: claude-sonnet-4-5-20250929 }] }
`;
const EXTRA = `
pricing:
  claude-sonnet-4-5-20250929: { input: 3, output: 15 }
budgets:
  rules:
    - { name: alpha-day, scope: key, match: [alpha], period: day, usd: 1000 }
`;

describe('messages – budget reservation with prompt caching', () => {
  let anthropic: FakeAnthropic;
  let gw: TestGateway;
  before(async () => {
    anthropic = await startFakeAnthropic();
    const yaml = defaultTestConfig({ anthropicUrl: anthropic.url }).replace('models:\n', MODELS) + EXTRA;
    gw = await startTestGateway({ anthropicUrl: anthropic.url, yaml });
  });
  after(async () => {
    await gw.close();
    await anthropic.close();
  });

  const reservedUsd = async (): Promise<number> => {
    const res = await fetch(`${gw.url}/admin/budgets`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } });
    const rows = ((await res.json()) as { data: Array<{ name: string; reserved: { usd: number } }> }).data;
    return rows.find((r) => r.name === 'alpha-day')!.reserved.usd;
  };

  /** What the budget holds while the request is in flight (the upstream answers late). */
  async function reservedFor(system: unknown): Promise<number> {
    anthropic.script({ delayMs: 1500 });
    const answer = fetch(`${gw.url}/v1/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': APP_KEY, 'anthropic-version': '2023-06-01' },
      body: JSON.stringify({ model: 'claude-sonnet-4-5', max_tokens: 1, system, messages: [{ role: 'user', content: 'hi' }] }),
    });
    let reserved = 0;
    for (let i = 0; i < 200 && reserved === 0; i++) {
      reserved = await reservedUsd();
      if (reserved === 0) await new Promise((r) => setTimeout(r, 5));
    }
    const res = await answer;
    assert.equal(res.status, 200, await res.text());
    for (let i = 0; i < 200 && (await reservedUsd()) > 0; i++) await new Promise((r) => setTimeout(r, 5));
    return reserved;
  }

  it('reservation – a prompt with cache_control is reserved at the cache-write rate', async () => {
    const text = 'Reference material. '.repeat(2000);
    const plain = await reservedFor(text);
    const marked = await reservedFor([{ type: 'text', text, cache_control: { type: 'ephemeral' } }]);
    assert.ok(plain > 0, 'the plain request held a reservation');
    // One output token at most: the prompt is nearly all of it, so the ratio is the cache-write premium.
    const ratio = marked / plain;
    assert.ok(ratio > 1.24 && ratio < 1.26, `marked ${marked} vs plain ${plain}: ratio ${ratio}`);
  });
});
