// The response cache on the Messages ingress: what only the Messages request
// carries (thinking, cache_control markers), and the chat form the cache key
// is built from does not, still tells two requests apart.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startFakeAnthropic, type FakeAnthropic } from '../helpers/fake-anthropic.js';
import { APP_KEY, defaultTestConfig, startTestGateway, type TestGateway } from '../helpers/gateway.js';

const MODELS = `models:
  claude-sonnet-4-5: { deployments: [{ provider: fakeanthropic, model: claude-sonnet-4-5-20250929 }] }
`;

describe('messages – response cache keys', () => {
  let anthropic: FakeAnthropic;
  let gw: TestGateway;
  before(async () => {
    anthropic = await startFakeAnthropic();
    const yaml = defaultTestConfig({ anthropicUrl: anthropic.url }).replace('models:\n', MODELS) + '\ncache: { single_flight_timeout_ms: 5000 }\n';
    gw = await startTestGateway({ anthropicUrl: anthropic.url, yaml });
  });
  after(async () => {
    await gw.close();
    await anthropic.close();
  });

  const send = async (body: Record<string, unknown>) => {
    const res = await fetch(`${gw.url}/v1/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': APP_KEY, 'anthropic-version': '2023-06-01' },
      body: JSON.stringify({ model: 'claude-sonnet-4-5', max_tokens: 2000, temperature: 0, ...body }),
    });
    assert.equal(res.status, 200, await res.clone().text());
    await res.arrayBuffer();
    return res.headers.get('x-gateway-cache');
  };

  it('cache key – requests that differ only in thinking or cache_control never share an entry', async () => {
    const messages = [{ role: 'user', content: 'the same question' }];
    const calls = anthropic.calls.length;
    assert.equal(await send({ messages, system: 'Be brief.' }), 'miss');
    assert.equal(await send({ messages, system: 'Be brief.' }), 'hit', 'the same request is served from the cache');
    assert.equal(anthropic.calls.length, calls + 1);
    assert.equal(await send({ messages, system: 'Be brief.', thinking: { type: 'enabled', budget_tokens: 1024 } }), 'miss', 'thinking asks for another answer');
    assert.equal(await send({ messages, system: [{ type: 'text', text: 'Be brief.', cache_control: { type: 'ephemeral' } }] }), 'miss', 'cache_control is priced differently');
    const marked = [{ role: 'user', content: [{ type: 'text', text: 'the same question', cache_control: { type: 'ephemeral' } }] }];
    assert.equal(await send({ messages: marked, system: 'Be brief.' }), 'miss', 'a marker on a message block too');
    assert.equal(anthropic.calls.length, calls + 4);
    assert.equal(await send({ messages, system: 'Be brief.', thinking: { type: 'enabled', budget_tokens: 1024 } }), 'hit', 'each variant has its own entry');
  });
});
