// Detectors against disguised data, through the real gateway with the shipped
// lane policies (policies/lanes.yaml): the red lane's self-hosted `local`
// provider is the fake OpenAI upstream here, so the test sees exactly what
// would leave the gateway.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import OpenAI from 'openai';
import { startFakeOpenAI, type FakeOpenAI } from '../helpers/fake-openai.js';
import { defaultTestConfig, startTestGateway, UPSTREAM_SECRET, type TestGateway } from '../helpers/gateway.js';

describe('detectors – normalised text, shipped policies', () => {
  let upstream: FakeOpenAI;
  let gw: TestGateway;
  let client: OpenAI;
  before(async () => {
    upstream = await startFakeOpenAI();
    const shipped = await readFile(new URL('../../policies/lanes.yaml', import.meta.url), 'utf8');
    let yaml = defaultTestConfig({ openaiUrl: upstream.url });
    // The providers the shipped lanes name; only `local` is called.
    const provider = (name: string, type: string, url: string): string =>
      `  ${name}:\n    type: ${type}\n    base_url: ${url}\n    api_key: ${UPSTREAM_SECRET}\n    retry: { max_retries: 0 }\n    breaker: { enabled: false }\n`;
    yaml = yaml.replace(
      /^providers:\n/m,
      `providers:\n${provider('local', 'openai', `${upstream.url}/v1`)}${provider('openai', 'openai', 'http://127.0.0.1:9/v1')}${provider('anthropic', 'anthropic', 'http://127.0.0.1:9')}`,
    );
    yaml = yaml.replace(/^models:\n/m, 'models:\n  local-fake: { deployments: [{ provider: local, model: llama-3.1-8b-instruct }] }\n');
    gw = await startTestGateway({ yaml: `${yaml}\npolicies: { dir: ./policies }\n`, files: { 'policies/lanes.yaml': shipped } });
    client = gw.client();
  });
  after(async () => {
    await gw.close();
    await upstream.close();
  });

  /** Sends `content` and returns the lane, what the upstream received and what the app got back. */
  async function send(content: string, lane?: string): Promise<{ lane: string | null; sent: string; answer: string }> {
    const calls = upstream.calls.length;
    const { data, response } = await client.chat.completions
      .create({ model: 'local-fake', messages: [{ role: 'user', content }], metadata: { purpose: 'support' } }, lane ? { headers: { 'x-gateway-lane': lane } } : {})
      .withResponse();
    assert.equal(upstream.calls.length, calls + 1);
    const messages = upstream.calls.at(-1)!.body.messages as Array<{ content: string }>;
    return { lane: response.headers.get('x-gateway-lane'), sent: messages.at(-1)!.content, answer: data.choices[0]!.message.content ?? '' };
  }

  it('card – full-width digits and ideographic spaces escalate green to red, which redacts exactly the number', async () => {
    const card = '４１１１　１１１１　１１１１　１１１１';
    const r = await send(`カード番号：${card}。よろしく`);
    assert.equal(r.lane, 'red');
    assert.equal(r.sent, 'カード番号：[CARD_1]。よろしく');
    assert.equal(r.answer, `Hello from fake-openai: カード番号：${card}。よろしく`, 'the app gets its own spelling back');
  });

  it('card – zero-width spaces inside the number are redacted with it in red', async () => {
    const r = await send('pay with 4111\u200b1111\u200b1111\u200b1111 today', 'red');
    assert.equal(r.lane, 'red');
    assert.equal(r.sent, 'pay with [CARD_1] today');
  });

  it('card – dot-separated groups escalate amber to red', async () => {
    const r = await send('card 5500.0000.0000.0004, exp 12/27', 'amber');
    assert.equal(r.lane, 'red');
    assert.equal(r.sent, 'card [CARD_1], exp 12/27');
  });

  it('iban – no-break spaces and Arabic-Indic check digits still make an IBAN', async () => {
    const r = await send('IBAN: DE٨٩\u00a03704\u00a00044\u00a00532\u00a00130\u00a000 (Sparkasse)');
    assert.equal(r.lane, 'red');
    assert.equal(r.sent, 'IBAN: [IBAN_1] (Sparkasse)');
  });

  it('custom detector – a full-width employee number is redacted in amber', async () => {
    const r = await send('ticket for ＥＭＰ－１２３４５６ please', 'amber');
    assert.equal(r.lane, 'amber');
    assert.equal(r.sent, 'ticket for [EMPLOYEE_ID_1] please');
  });

  it('api_key – a key split by a zero-width space is blocked; upstream is not called', async () => {
    const calls = upstream.calls.length;
    const key = `sk-proj-Ab3\u200b${'Xy9'.repeat(10)}`;
    await assert.rejects(
      client.chat.completions.create({ model: 'local-fake', messages: [{ role: 'user', content: `deploy with ${key}` }] }),
      (err: unknown) => err instanceof OpenAI.APIError && err.status === 400 && err.code === 'policy_blocked' && /api_key/.test(err.message) && !err.message.includes('Xy9'),
    );
    assert.equal(upstream.calls.length, calls);
    assert.ok(!gw.logs().includes('Xy9Xy9'), 'no part of the key is logged');
  });

  it('plain text – untouched: what the app sent is what the upstream gets', async () => {
    const text = 'Résumé: ship v1.2.3 on 2024-03-14, ticket #4411 — thanks!';
    const r = await send(text);
    assert.equal(r.lane, 'green');
    assert.equal(r.sent, text);
  });
});
