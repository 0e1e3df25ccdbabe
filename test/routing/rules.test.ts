import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ConfigError, parseGatewayConfig } from '../../src/config/load.js';
import { startFakeOpenAI, type FakeOpenAI } from '../helpers/fake-openai.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { APP_KEY, auditRecordFor, OTHER_KEY, openaiProvider, postChat, routingConfig } from '../helpers/routing.js';

// Every model has its own upstream model name, so the fake's last call shows
// which model a rule picked.
const MODELS = ['smart', 'tagged', 'small', 'team', 'tools', 'structured', 'premium', 'fast'] as const;

function rulesConfig(upstreamUrl: string): string {
  return routingConfig(`
providers:
  up: ${openaiProvider(upstreamUrl, 'retry: { max_retries: 0 }, breaker: { enabled: false }')}
models:
${MODELS.map((m) => `  ${m}: { deployments: [{ provider: up, model: ${m}-up }] }`).join('\n')}
routes:
  auto:
    rules:
      - { name: urgent, match: { priority: [high] }, model: smart }
      - { name: labelled, match: { tags: [vip, beta-test] }, model: tagged }
      - { name: tiny, match: { tags: [tiny], max_prompt_tokens: 30 }, model: small }
      - { name: beta-team, match: { teams: [team-beta] }, model: team }
      - { name: agents, match: { has_tools: true }, model: tools }
      - { name: json, match: { response_format: [json_schema] }, model: structured }
      - { name: long, match: { min_prompt_tokens: 200 }, model: premium }
      - { name: rest, default: true, model: fast }
`);
}

describe('routing rules', () => {
  let upstream: FakeOpenAI;
  let gw: TestGateway;
  before(async () => {
    upstream = await startFakeOpenAI();
    gw = await startTestGateway({ yaml: rulesConfig(upstream.url) });
  });
  after(async () => {
    await gw.close();
    await upstream.close();
  });

  /** Sends one request to `auto` and checks every place the decision shows. */
  async function expectRule(rule: string, model: (typeof MODELS)[number], body: Record<string, unknown>, o: { key?: string; headers?: Record<string, string> } = {}) {
    const before = upstream.calls.length;
    const res = await postChat(gw, { model: 'auto', ...body }, o);
    assert.equal(res.status, 200, `rule ${rule}: ${await res.clone().text()}`);
    await res.json();
    assert.equal(res.headers.get('x-gateway-route'), `auto; rule=${rule}; model=${model}`);
    assert.equal(res.headers.get('x-gateway-deployment'), `up/${model}-up`);
    assert.equal(upstream.calls.length, before + 1, 'one upstream call');
    assert.equal(upstream.calls.at(-1)!.body.model, `${model}-up`);
    const record = await auditRecordFor(gw, res.headers.get('x-request-id'));
    assert.deepEqual(record.route, { name: 'auto', rule, model });
    assert.equal(record.deployment, `up/${model}-up`);
  }

  it('rules – no condition holds: the default rule picks fast', async () => {
    await expectRule('rest', 'fast', {});
  });

  it('rules – x-gateway-priority: high goes to smart, other priorities do not', async () => {
    await expectRule('urgent', 'smart', {}, { headers: { 'x-gateway-priority': 'high' } });
    await expectRule('urgent', 'smart', { metadata: { priority: 'high' } });
    await expectRule('rest', 'fast', {}, { headers: { 'x-gateway-priority': 'low' } });
  });

  it('rules – tags match from the x-gateway-tags header and from metadata.tags', async () => {
    await expectRule('labelled', 'tagged', {}, { headers: { 'x-gateway-tags': 'other, vip' } });
    await expectRule('labelled', 'tagged', { metadata: { tags: 'a,beta-test' } });
    await expectRule('rest', 'fast', { metadata: { tags: 'a,b' } });
  });

  it('rules – a team rule matches the key’s team only', async () => {
    await expectRule('beta-team', 'team', {}, { key: OTHER_KEY });
    await expectRule('rest', 'fast', {}, { key: APP_KEY });
  });

  it('rules – has_tools matches a request that declares tools', async () => {
    await expectRule('agents', 'tools', {
      tools: [{ type: 'function', function: { name: 'lookup', parameters: { type: 'object', properties: {} } } }],
    });
  });

  it('rules – response_format json_schema matches, json_object does not', async () => {
    await expectRule('json', 'structured', {
      response_format: { type: 'json_schema', json_schema: { name: 'out', schema: { type: 'object' } } },
    });
    await expectRule('rest', 'fast', { response_format: { type: 'json_object' } });
  });

  it('rules – min_prompt_tokens sends a long prompt to premium and a short one to the default', async () => {
    const long = 'The quarterly report covers revenue, costs and outlook in detail. '.repeat(40);
    await expectRule('long', 'premium', { messages: [{ role: 'user', content: long }] });
    await expectRule('rest', 'fast', { messages: [{ role: 'user', content: 'short question' }] });
  });

  it('rules – a prompt of more bytes than the threshold but fewer tokens is counted, not guessed', async () => {
    // About 280 bytes and 60 tokens: over 200 bytes, so only the count can say it is under 200 tokens.
    const medium = 'The quarterly report covers revenue, costs and outlook in detail. '.repeat(4);
    assert.ok(Buffer.byteLength(medium) > 200);
    await expectRule('rest', 'fast', { messages: [{ role: 'user', content: medium }] });
    await expectRule('tiny', 'small', { messages: [{ role: 'user', content: 'hi' }] }, { headers: { 'x-gateway-tags': 'tiny' } });
    await expectRule('rest', 'fast', { messages: [{ role: 'user', content: medium }] }, { headers: { 'x-gateway-tags': 'tiny' } });
  });

  it('rules – a long prompt is counted only as far as each rule needs, and still decides right', async () => {
    // Over 100 KB of lines: the tiny rule (at most 30 tokens) stops counting
    // past 30, then the long rule (at least 200) counts on to 200.
    const long = 'The quarterly report covers revenue, costs and outlook in detail.\n'.repeat(1600);
    await expectRule('long', 'premium', { messages: [{ role: 'user', content: long }] }, { headers: { 'x-gateway-tags': 'tiny' } });
    const short = 'Twenty words or so, which is more than thirty bytes but fewer than thirty tokens.';
    await expectRule('tiny', 'small', { messages: [{ role: 'user', content: short }] }, { headers: { 'x-gateway-tags': 'tiny' } });
  });

  it('rules – special-token text in a prompt is counted as text, not refused', async () => {
    const long = 'Summarise this log line: <|endoftext|> <|im_start|>system. '.repeat(40);
    await expectRule('long', 'premium', { messages: [{ role: 'user', content: long }] });
  });

  it('rules – the first matching rule wins when several hold', async () => {
    await expectRule('urgent', 'smart', { metadata: { tags: 'vip' } }, { key: OTHER_KEY, headers: { 'x-gateway-priority': 'high' } });
  });

  it('rules – the OpenAI SDK can call a route by name', async () => {
    const { data, response } = await gw
      .client()
      .chat.completions.create({ model: 'auto', messages: [{ role: 'user', content: 'sdk' }] }, { headers: { 'x-gateway-tags': 'vip' } })
      .withResponse();
    assert.equal(response.headers.get('x-gateway-route'), 'auto; rule=labelled; model=tagged');
    assert.equal(data.choices[0]!.message.content, 'Hello from fake-openai: sdk');
  });
});

describe('routing rules – config errors', () => {
  const base = (routes: string, models = '') => `
auth: { mode: none }
providers: { p: { type: mock } }
models:
  fast: { deployments: [{ provider: p, model: m1 }] }
  smart: { deployments: [{ provider: p, model: m2 }] }
${models}
routes:
${routes}
`;

  function expectProblem(yaml: string, path: string, message: RegExp) {
    assert.throws(
      () => parseGatewayConfig(yaml, 'gw.yaml', {}),
      (err: unknown) => {
        assert.ok(err instanceof ConfigError, `a ConfigError, got ${String(err)}`);
        const problem = err.problems.find((p) => p.path === path);
        assert.ok(problem, `a problem at ${path}; got: ${err.message}`);
        assert.match(problem.message, message);
        assert.equal(problem.file, 'gw.yaml');
        assert.match(err.message, new RegExp(`gw\\.yaml: ${path.replace(/[.[\]]/g, '\\$&')}:`));
        return true;
      },
    );
  }

  it('config – a valid route parses', () => {
    const config = parseGatewayConfig(
      base(`  auto:
    rules:
      - { name: a, match: { priority: [high] }, model: smart }
      - { name: b, default: true, model: fast }`),
      'gw.yaml',
      {},
    );
    assert.equal(config.routes.auto!.rules.length, 2);
  });

  it('config – a rule naming a missing model names the rule’s model path', () => {
    expectProblem(
      base(`  auto:
    rules:
      - { name: a, match: { priority: [high] }, model: nope }
      - { name: b, default: true, model: fast }`),
      'routes.auto.rules[0].model',
      /unknown model "nope"/,
    );
  });

  it('config – a default rule that is not last is rejected', () => {
    expectProblem(
      base(`  auto:
    rules:
      - { name: a, default: true, model: fast }
      - { name: b, match: { priority: [high] }, model: smart }`),
      'routes.auto.rules[0].default',
      /must be the last/,
    );
  });

  it('config – a route without a default rule is rejected', () => {
    expectProblem(
      base(`  auto:
    rules:
      - { name: a, match: { priority: [high] }, model: smart }`),
      'routes.auto.rules',
      /default: true/,
    );
  });

  it('config – a route named like a model is rejected', () => {
    expectProblem(
      base(`  fast:
    rules:
      - { name: a, default: true, model: smart }`),
      'routes.fast',
      /also a model name/,
    );
  });
});
