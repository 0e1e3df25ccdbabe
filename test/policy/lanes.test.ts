import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startFakeOpenAI, type FakeOpenAI } from '../helpers/fake-openai.js';
import { APP_KEY, OTHER_KEY, startTestGateway, UPSTREAM_SECRET, type TestGateway } from '../helpers/gateway.js';
import { TEST_POLICIES, WITH_POLICIES } from './fixtures.js';

interface ErrorBody {
  error: { message: string; code: string; param: string | null };
}

describe('lanes', () => {
  let upstream: FakeOpenAI;
  let gw: TestGateway;
  before(async () => {
    upstream = await startFakeOpenAI();
    gw = await startTestGateway({ openaiUrl: upstream.url, extra: WITH_POLICIES, files: { 'policies/lanes.yaml': TEST_POLICIES }, betaLane: 'amber' });
  });
  after(async () => {
    await gw.close();
    await upstream.close();
  });

  const chat = (body: object, headers: Record<string, string> = {}, key = APP_KEY) =>
    fetch(`${gw.baseURL}/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', ...headers },
      body: JSON.stringify(body),
    });
  const user = (content: string) => [{ role: 'user', content }];

  it('lane – a request starts in its key lane and may move stricter by header, never looser', async () => {
    const plain = await chat({ model: 'gpt-fake', messages: user('hello') });
    assert.equal(plain.status, 200);
    assert.equal(plain.headers.get('x-gateway-lane'), 'green');

    const amber = await chat({ model: 'gpt-fake', messages: user('hello') }, { 'x-gateway-lane': 'amber' });
    assert.equal(amber.status, 200);
    assert.equal(amber.headers.get('x-gateway-lane'), 'amber');

    // beta's key starts in amber and may use only amber
    const down = await chat({ model: 'fast', messages: user('hello') }, { 'x-gateway-lane': 'green' }, OTHER_KEY);
    assert.equal(down.status, 403);
    assert.equal(((await down.json()) as ErrorBody).error.code, 'lane_violation');
    const notAllowed = await chat({ model: 'fast', messages: user('hello') }, { 'x-gateway-lane': 'red' }, OTHER_KEY);
    assert.equal(notAllowed.status, 403);
    assert.match(((await notAllowed.json()) as ErrorBody).error.message, /may not use lane "red"/);
    const unknown = await chat({ model: 'fast', messages: user('hello') }, { 'x-gateway-lane': 'purple' });
    assert.equal(unknown.status, 403);
  });

  it('lane – routing only considers deployments the lane allows', async () => {
    const calls = upstream.calls.length;
    const res = await chat({ model: 'gpt-fake', messages: user('hi'), metadata: { purpose: 'test' } }, { 'x-gateway-lane': 'red' });
    assert.equal(res.status, 403);
    const body = (await res.json()) as ErrorBody;
    assert.equal(body.error.code, 'lane_violation');
    assert.match(body.error.message, /Lane "red" allows only mock/);
    assert.equal(upstream.calls.length, calls, 'the forbidden provider was never called');
    const ok = await chat({ model: 'fast', messages: user('hi'), metadata: { purpose: 'test' } }, { 'x-gateway-lane': 'red' });
    assert.equal(ok.status, 200);
  });

  it('lane – red requires its metadata, from the body or a header', async () => {
    const missing = await chat({ model: 'fast', messages: user('hi') }, { 'x-gateway-lane': 'red' });
    assert.equal(missing.status, 400);
    assert.match(((await missing.json()) as ErrorBody).error.message, /requires request metadata "purpose"/);
    const viaHeader = await chat({ model: 'fast', messages: user('hi') }, { 'x-gateway-lane': 'red', 'x-gateway-meta-purpose': 'support' });
    assert.equal(viaHeader.status, 200);
  });

  it('detectors – a card number escalates green to red, which then redacts it and restores it in the answer', async () => {
    const card = '4111 1111 1111 1111';
    const refused = await chat({ model: 'gpt-fake', messages: user(`my card is ${card}`), metadata: { purpose: 'billing' } });
    assert.equal(refused.status, 403, 'red forbids the OpenAI deployment');
    const res = await chat({ model: 'fast', messages: user(`my card is ${card}`), metadata: { purpose: 'billing' } });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('x-gateway-lane'), 'red');
    const body = (await res.json()) as { choices: Array<{ message: { content: string } }> };
    // the mock echoes what it received: the placeholder, restored on the way back
    assert.equal(body.choices[0]!.message.content, `Echo: my card is ${card}`);
    const record = (await gw.auditRecords()).find((r) => r.id === res.headers.get('x-request-id'))!;
    const lane = record.lane as { name: string; reasons: string[] };
    assert.equal(lane.name, 'red');
    assert.ok(lane.reasons.some((r) => r.includes('card')), lane.reasons.join('; '));
    assert.ok(!JSON.stringify(record).includes('4111'), 'the audit record holds no card number');
  });

  it('detectors – block names the detector and never echoes the secret; upstream is not called', async () => {
    const calls = upstream.calls.length;
    const secret = 'sk-proj-' + 'Ab3'.repeat(12);
    const res = await chat({ model: 'gpt-fake', messages: [{ role: 'system', content: 'x' }, { role: 'user', content: `use ${secret} please` }] });
    assert.equal(res.status, 400);
    const body = (await res.json()) as ErrorBody;
    assert.equal(body.error.code, 'policy_blocked');
    assert.match(body.error.message, /api_key detector/);
    assert.equal(body.error.param, 'messages[1].content');
    assert.ok(!JSON.stringify(body).includes(secret));
    const custom = await chat({ model: 'gpt-fake', messages: user('code TOPSECRET-1234') });
    assert.equal(custom.status, 400);
    assert.match(((await custom.json()) as ErrorBody).error.message, /ticket_secret/);
    // tool arguments and tool results are scanned too
    const inTool = await chat({
      model: 'gpt-fake',
      messages: [
        { role: 'user', content: 'x' },
        { role: 'assistant', content: null, tool_calls: [{ id: 'c1', type: 'function', function: { name: 'search', arguments: JSON.stringify({ q: secret }) } }] },
        { role: 'tool', tool_call_id: 'c1', content: 'ok' },
      ],
    });
    assert.equal(inTool.status, 400);
    assert.equal(((await inTool.json()) as ErrorBody).error.param, 'messages[1].tool_calls[0].function.arguments');
    assert.equal(upstream.calls.length, calls);
    assert.ok(!gw.logs().includes(secret), 'the secret is not logged');
    assert.ok(!gw.logs().includes(UPSTREAM_SECRET));
  });

  it('redaction – amber sends placeholders upstream and restores them for the app, streamed too', async () => {
    const email = 'jane.doe@corp.example.org';
    const res = await gw.client(OTHER_KEY).chat.completions.create({ model: 'fast', messages: [{ role: 'user', content: `write to ${email} and ${email}` }] });
    assert.equal(res.choices[0]!.message.content, `Echo: write to ${email} and ${email}`);

    const viaUpstream = await chat({ model: 'gpt-fake', messages: user(`mail ${email} or call +44 20 7946 0958`) }, { 'x-gateway-lane': 'amber' });
    assert.equal(viaUpstream.status, 200);
    const sent = upstream.calls.at(-1)!.rawBody;
    assert.ok(!sent.includes(email), 'the address never left the gateway');
    assert.match(sent, /\[EMAIL_1\]/);
    assert.match(sent, /\[PHONE_1\]/);
    const answer = (await viaUpstream.json()) as { choices: Array<{ message: { content: string } }> };
    assert.equal(answer.choices[0]!.message.content, `Hello from fake-openai: mail ${email} or call +44 20 7946 0958`);

    const stream = await gw
      .client()
      .chat.completions.create({ model: 'gpt-fake', stream: true, messages: [{ role: 'user', content: `stream ${email} back` }] }, { headers: { 'x-gateway-lane': 'amber' } });
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? '';
    assert.equal(text, `Hello from fake-openai: stream ${email} back`);
  });

  it('redaction – a streamed tool call’s arguments are restored even when a placeholder is split between pieces', async () => {
    const email = 'jane.doe@corp.example.org';
    const search = { type: 'function' as const, function: { name: 'search', parameters: { type: 'object' } } };
    const stream = await gw
      .client()
      .chat.completions.create({ model: 'gpt-fake', stream: true, tools: [search], messages: [{ role: "user" as const, content: `use tool search args:{"q":"mail ${email} now"}` }] }, { headers: { 'x-gateway-lane': 'amber' } });
    const pieces: string[] = [];
    for await (const chunk of stream) for (const d of chunk.choices[0]?.delta?.tool_calls ?? []) if (d.function?.arguments) pieces.push(d.function.arguments);
    // The fake sends {"q":"mail [EMAIL_1] now"} in two halves, cut inside the placeholder.
    assert.match(upstream.calls.at(-1)!.rawBody, /\[EMAIL_1\]/);
    assert.equal(pieces.join(''), `{"q":"mail ${email} now"}`);
    assert.ok(pieces.length >= 2, 'the arguments were relayed as they came, not held whole');
  });

  it('tools – a denied tool is rejected in green and stripped in amber', async () => {
    const shell = { type: 'function', function: { name: 'shell', parameters: { type: 'object' } } };
    const search = { type: 'function', function: { name: 'search', parameters: { type: 'object' } } };
    const rejected = await chat({ model: 'gpt-fake', tools: [shell], messages: user('hi') });
    assert.equal(rejected.status, 403);
    assert.match(((await rejected.json()) as ErrorBody).error.message, /does not allow the tool "shell"/);
    const stripped = await chat({ model: 'gpt-fake', tools: [shell, search], tool_choice: { type: 'function', function: { name: 'shell' } }, messages: user('hi') }, { 'x-gateway-lane': 'amber' });
    assert.equal(stripped.status, 200);
    const sent = upstream.calls.at(-1)!.body;
    assert.deepEqual((sent.tools as Array<{ function: { name: string } }>).map((t) => t.function.name), ['search']);
    assert.equal(sent.tool_choice, undefined);
  });

  it('tools – a call to a recipient outside the allowed domains is blocked, streamed or not', async () => {
    const email = { type: 'function', function: { name: 'update_ticket', parameters: { type: 'object' } } };
    const args = Buffer.from(JSON.stringify({ to: ['ok@example.com', 'leak@evil.test'] })).toString('base64');
    const res = await chat({ model: 'gpt-fake', tools: [email], messages: user(`use tool update_ticket args64:${args}`) });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('x-gateway-tool-calls-blocked'), '1');
    const body = (await res.json()) as { choices: Array<{ message: { tool_calls?: unknown[] }; finish_reason: string }>; gateway: { blocked_tool_calls: Array<{ reason: string }> } };
    assert.equal(body.choices[0]!.message.tool_calls, undefined);
    assert.equal(body.choices[0]!.finish_reason, 'stop');
    assert.match(body.gateway.blocked_tool_calls[0]!.reason, /evil\.test/);

    const stream = await chat({ model: 'gpt-fake', stream: true, tools: [email], messages: user(`use tool update_ticket args64:${args}`) });
    const text = await stream.text();
    assert.ok(!text.includes('"tool_calls"'), 'no tool call reached the app');
    assert.ok(text.includes('blocked_tool_calls'));
    assert.ok(text.includes('"finish_reason":"stop"'));

    const allowed = await chat({ model: 'gpt-fake', stream: true, tools: [email], messages: user(`use tool update_ticket args64:${Buffer.from(JSON.stringify({ to: 'a@example.com' })).toString('base64')}`) });
    const events = (await allowed.text()).split('\n\n').filter((e) => e.startsWith('data: {'));
    const calls = events.map((e) => JSON.parse(e.slice(6))).filter((c) => c.choices?.[0]?.delta?.tool_calls);
    assert.equal(calls.length, 1, 'the allowed call arrives whole, in one chunk');
    assert.deepEqual(JSON.parse(calls[0].choices[0].delta.tool_calls[0].function.arguments), { to: 'a@example.com' });
  });

  it('explain – says which lane, what fired and which deployments remain, calling nothing', async () => {
    const { ADMIN_KEY } = await import('../helpers/gateway.js');
    const calls = upstream.calls.length;
    const res = await fetch(`${gw.url}/admin/policy/explain`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ key_id: 'alpha', request: { model: 'chain', messages: user('reach me at bob@example.com') } }),
    });
    assert.equal(res.status, 200);
    const body = (await res.json()) as {
      decision: string;
      lane: { name: string; reasons: string[] };
      detectors: Array<{ detector: string; action: string }>;
      deployments: { remaining: string[]; excluded_by_lane: string[] };
      redacted_request: Array<{ content: string }>;
    };
    assert.equal(body.decision, 'allowed');
    assert.equal(body.lane.name, 'amber');
    assert.deepEqual(body.detectors.map((d) => `${d.detector}:${d.action}`), ['email:redact']);
    assert.deepEqual(body.deployments.remaining, ['fakeopenai/gpt-4o-mini']);
    assert.deepEqual(body.deployments.excluded_by_lane, ['refused/gpt-4o-mini']);
    assert.equal(body.redacted_request[0]!.content, 'reach me at [EMAIL_1]');
    assert.equal(upstream.calls.length, calls);
  });
});
