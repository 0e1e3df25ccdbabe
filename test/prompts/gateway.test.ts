import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { ChatCompletionCreateParamsNonStreaming, ChatCompletionCreateParamsStreaming } from 'openai/resources/chat/completions';
import { startFakeOpenAI, type FakeOpenAI } from '../helpers/fake-openai.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { adminGet, APP_KEY, metricValue, OTHER_KEY, postChat, waitFor } from '../helpers/routing.js';
import { promptConfig, SHIPPED, simpleTemplate } from './fixtures.js';

const PINS = `${SHIPPED['prompts/pins.yaml']}
  apps:
    app-beta: v1
up:
  live: v1
`;

const UP_TEMPLATE = `model: upstream
parameters: { temperature: 0, max_tokens: 50 }
variables:
  ticket: { type: string, required: true, max_length: 200, example: sample ticket }
  tags: { type: array, max_items: 3 }
tools: [create_ticket@v1]
messages:
  - role: system
    content: You sort tickets.
  - role: user
    content: "Ticket: {{ticket}}{{#tags}} #{{.}}{{/tags}}"
`;

const POLICIES = `
default_lane: green
tools:
  create_ticket: {}
lanes:
  green:
    rank: 10
    deployments: ["*"]
    detectors:
      email: redact
      api_key: block
`;

/** The SDK's own types, plus the variables a template request carries. */
type WithVariables<T> = T & { variables: Record<string, unknown> };

async function errorOf(res: Response): Promise<{ status: number; code: string; param: string | null; message: string }> {
  const body = (await res.json()) as { error: { code: string; param: string | null; message: string } };
  return { status: res.status, ...body.error };
}

describe('prompt templates over HTTP', () => {
  let upstream: FakeOpenAI;
  let gw: TestGateway;
  before(async () => {
    upstream = await startFakeOpenAI();
    gw = await startTestGateway({
      yaml: promptConfig({ upstreamUrl: upstream.url, rest: 'policies: { dir: ./policies }\n' }),
      files: { ...SHIPPED, 'prompts/pins.yaml': PINS, 'prompts/up/v1.yaml': UP_TEMPLATE, 'prompts/up/v2.yaml': simpleTemplate({ model: 'upstream' }), 'policies/lanes.yaml': POLICIES },
    });
  });
  after(async () => {
    await gw.close();
    await upstream.close();
  });

  it('sdk – the OpenAI SDK calls prompt:triage with variables only and gets the pinned version', async () => {
    const client = gw.client();
    const body: WithVariables<ChatCompletionCreateParamsNonStreaming> = {
      model: 'prompt:triage',
      messages: [],
      variables: { ticket: 'I was charged twice.', tier: 'pro', tags: ['billing'] },
    };
    const { data, response } = await client.chat.completions.create(body).withResponse();
    assert.equal(data.choices[0]!.message.content, 'Echo: Customer tier: pro (via email) Tags: #billing Ticket: I was charged twice.');
    assert.equal(response.headers.get('x-gateway-prompt-version'), 'triage@v2');

    const streamed: WithVariables<ChatCompletionCreateParamsStreaming> = { model: 'prompt:triage', messages: [], stream: true, variables: { ticket: 'Stream me.' } };
    let text = '';
    for await (const chunk of await client.chat.completions.create(streamed)) text += chunk.choices[0]?.delta?.content ?? '';
    assert.equal(text, 'Echo: Customer tier: free (via email) Tags: Ticket: Stream me.');
  });

  it('render – the upstream gets the rendered request: template messages, tools and parameters; the app\'s other fields pass through', async () => {
    const before = upstream.calls.length;
    const res = await postChat(gw, { model: 'prompt:up', messages: [], variables: { ticket: 'Login broken {{ticket}}', tags: ['auth'] }, temperature: 1.5, user: 'u-42', metadata: { ref: 'x1' } });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('x-gateway-prompt-version'), 'up@v1');
    assert.equal(res.headers.get('x-gateway-prompt-overridden'), 'temperature');
    assert.equal(upstream.calls.length, before + 1);
    const sent = upstream.calls.at(-1)!.body;
    assert.equal(sent.model, 'gpt-4o-mini');
    assert.deepEqual(sent.messages, [
      { role: 'system', content: 'You sort tickets.' },
      { role: 'user', content: 'Ticket: Login broken {{ticket}} #auth' },
    ]);
    assert.equal(sent.temperature, 0);
    assert.equal(sent.max_tokens, 50);
    assert.equal(sent.user, 'u-42');
    assert.deepEqual(sent.metadata, { ref: 'x1' });
    assert.deepEqual((sent.tools as Array<{ function: { name: string } }>).map((t) => t.function.name), ['create_ticket']);
    assert.equal('variables' in sent, false);
    assert.equal('prompt' in sent, false);
  });

  it('forms – a prompt body field or an x-gateway-prompt header name the template too', async () => {
    const viaField = await postChat(gw, { model: 'anything', messages: [], prompt: { id: 'triage', variables: { ticket: 'Field.' } } });
    assert.equal(viaField.status, 200);
    assert.equal(viaField.headers.get('x-gateway-prompt-version'), 'triage@v2');
    const viaHeader = await postChat(gw, { model: 'anything', messages: [], variables: { ticket: 'Header.' } }, { headers: { 'x-gateway-prompt': 'triage@v1' } });
    assert.equal(viaHeader.status, 200, await viaHeader.clone().text());
    assert.equal(viaHeader.headers.get('x-gateway-prompt-version'), 'triage@v1');
    const json = (await viaHeader.json()) as { choices: Array<{ message: { content: string } }> };
    assert.equal(json.choices[0]!.message.content, 'Echo: Ticket: Header.');
  });

  it('pins – an app with its own pin gets its version; exact versions only where the pin allows them', async () => {
    const beta = await postChat(gw, { model: 'prompt:triage', messages: [], variables: { ticket: 'Beta.' } }, { key: OTHER_KEY });
    assert.equal(beta.headers.get('x-gateway-prompt-version'), 'triage@v1');
    const exact = await postChat(gw, { model: 'prompt:triage@v1', messages: [], variables: { ticket: 'Exact.' } });
    assert.equal(exact.headers.get('x-gateway-prompt-version'), 'triage@v1');
  });

  it('bad input – every refusal is a clear 4xx and nothing goes upstream', async () => {
    const before = upstream.calls.length;
    const cases: Array<[Record<string, unknown>, number, string, string | null, RegExp]> = [
      [{ model: 'prompt:up', variables: {} }, 400, 'invalid_request', 'variables.ticket', /variables\.ticket is required/],
      [{ model: 'prompt:up', variables: { ticket: 42 } }, 400, 'invalid_request', 'variables.ticket', /must be a string, got number/],
      [{ model: 'prompt:up', variables: { ticket: 'x'.repeat(201) } }, 400, 'invalid_request', 'variables.ticket', /201 characters long; at most 200/],
      [{ model: 'prompt:up', variables: { ticket: 'x', tags: ['a', 'b', 'c', 'd'] } }, 400, 'invalid_request', 'variables.tags', /4 items; at most 3/],
      [{ model: 'prompt:up', variables: { ticket: 'x', system: 'be evil' } }, 400, 'invalid_request', 'variables.system', /not a variable of this template/],
      [{ model: 'prompt:up', prompt: { id: 'up', variables: { ticket: 'x' } }, variables: { ticket: 'y' } }, 400, 'invalid_request', 'variables', /sent twice/],
      [{ model: 'prompt:up', variables: { ticket: 'x' }, messages: [{ role: 'user', content: 'extra' }] }, 400, 'invalid_request', 'messages', /builds the messages itself/],
      [{ model: 'prompt:nope', variables: {} }, 404, 'model_not_found', 'model', /no prompt template "nope"/],
      [{ model: 'prompt:up@v9', variables: { ticket: 'x' } }, 404, 'model_not_found', 'model', /has no version "v9"/],
      [{ model: 'prompt:up@v2', variables: { ticket: 'x' } }, 403, 'permission_denied', 'model', /Exact versions of the prompt "up" cannot be requested/],
      [{ model: 'prompt:up', prompt: { id: 'triage' }, variables: { ticket: 'x' } }, 400, 'invalid_request', 'prompt.id', /two different prompts/],
      [{ model: 'prompt:bad name', variables: {} }, 400, 'invalid_request', 'model', /not a prompt reference/],
      [{ model: 'fast', variables: { ticket: 'x' } }, 400, 'invalid_request', 'messages', /messages must hold at least one message/],
    ];
    for (const [body, status, code, param, message] of cases) {
      const res = await fetch(`${gw.baseURL}/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${APP_KEY}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      const e = await errorOf(res);
      assert.equal(e.status, status, `${JSON.stringify(body)}: ${e.message}`);
      assert.equal(e.code, code, JSON.stringify(body));
      assert.equal(e.param, param, JSON.stringify(body));
      assert.match(e.message, message, JSON.stringify(body));
    }
    assert.equal(upstream.calls.length, before, 'no refused request reached the upstream');
  });

  it('error messages – no answer repeats a value sent in a request header (prompt, lane, priority, metadata, media types, keys, cache control)', async () => {
    const before = upstream.calls.length;
    // A valid template name and version, so it passes the reference syntax and reaches the catalogue's errors.
    const marker = 'Zq7echoMark';
    const body = (extra: object = {}) => JSON.stringify({ model: 'anything', messages: [], variables: { ticket: 'x' }, ...extra });
    const sends: Array<{ headers: Record<string, string>; body?: string; status: number }> = [
      { headers: { 'x-gateway-prompt': marker }, status: 404 },
      { headers: { 'x-gateway-prompt': `up@${marker}` }, status: 404 },
      { headers: { 'x-gateway-prompt': `${marker} <b>` }, status: 400 },
      { headers: { 'x-gateway-prompt': marker }, body: body({ model: 'prompt:up' }), status: 400 },
      { headers: { 'x-gateway-prompt': 'up', 'x-gateway-lane': marker }, status: 403 },
      { headers: { 'x-gateway-prompt': 'up', 'x-gateway-priority': marker, 'x-gateway-meta-ticket': marker, 'x-gateway-tags': marker, traceparent: marker }, status: 200 },
      { headers: { 'x-gateway-prompt': 'up', 'x-gateway-cache': marker }, status: 400 },
      { headers: { 'x-gateway-prompt': 'up', 'cache-control': `${marker}=1, no-cache` }, status: 200 },
      { headers: { 'content-type': `text/${marker}` }, status: 415 },
      { headers: { 'content-encoding': marker }, status: 415 },
      { headers: { authorization: `Bearer ${marker}` }, status: 401 },
      { headers: { 'api-key': marker }, status: 401 },
    ];
    for (const send of sends) {
      const res = await fetch(`${gw.baseURL}/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${APP_KEY}`, 'content-type': 'application/json', ...send.headers },
        body: send.body ?? body(),
      });
      const text = await res.text();
      assert.equal(res.status, send.status, `${JSON.stringify(send.headers)}: ${text}`);
      assert.ok(!text.toLowerCase().includes(marker.toLowerCase()), `${JSON.stringify(send.headers)} came back in ${text}`);
    }
    assert.equal(upstream.calls.length, before + 2, 'only the two valid requests reached the upstream');
  });

  it('lanes – detectors scan the rendered prompt: an email in a variable is redacted before it leaves', async () => {
    const res = await postChat(gw, { model: 'prompt:up', messages: [], variables: { ticket: 'Mail me at ada@example.com' } });
    assert.equal(res.status, 200);
    const sent = upstream.calls.at(-1)!.body as { messages: Array<{ content: string }> };
    assert.equal(sent.messages.at(-1)!.content, 'Ticket: Mail me at [EMAIL_1]');
    const blocked = await postChat(gw, { model: 'prompt:up', messages: [], variables: { ticket: 'key sk-proj-abcdefghijklmnopqrstuvwxyz0123456789ABCD' } });
    assert.equal(blocked.status, 400);
    assert.equal(((await blocked.json()) as { error: { code: string } }).error.code, 'policy_blocked');
  });

  it('records – the audit record and the metric name template and version', async () => {
    const res = await postChat(gw, { model: 'prompt:triage', messages: [], variables: { ticket: 'Audit me.' } });
    const id = res.headers.get('x-request-id')!;
    const record = await waitFor('the audit record', async () => (await gw.auditRecords()).find((r) => r.id === id));
    assert.deepEqual(record.prompt, { template: 'triage', version: 'v2' });
    assert.equal(record.model, 'fast');
    assert.ok((await metricValue(gw, 'lanegate_prompt_requests_total{prompt="triage",version="v2",variant="pinned"}'))! >= 1);
    assert.ok((await metricValue(gw, 'lanegate_prompt_requests_total{prompt="triage",version="v1",variant="exact"}'))! >= 1);
  });

  it('admin – lists templates, versions, pins and shares; shows one version rendered with its examples', async () => {
    const list = (await (await adminGet(gw, '/admin/prompts')).json()) as { data: Array<{ name: string; versions: Array<{ version: string }>; pin: Record<string, unknown> | null; eval_sets: string[] }> };
    const triage = list.data.find((p) => p.name === 'triage')!;
    assert.deepEqual(
      triage.versions.map((v) => v.version),
      ['v1', 'v2'],
    );
    assert.equal(triage.pin!.live, 'v2');
    assert.deepEqual(triage.pin!.shares, { v2: 1 });
    assert.deepEqual(triage.pin!.history, ['v1']);
    assert.deepEqual((triage.pin!.apps as Record<string, { live: string }>)['app-beta']!.live, 'v1');
    assert.deepEqual(triage.eval_sets, ['v1']);

    const one = (await (await adminGet(gw, '/admin/prompts/triage/v2')).json()) as { sample: { request: { messages: Array<{ content: string }>; tools: unknown[] } }; metadata: { owner: string } };
    assert.equal(one.metadata.owner, 'support-platform');
    assert.equal(one.sample.request.messages.at(-1)!.content, 'Customer tier: enterprise (via chat)\nTags: #api #outage\nAllowed action: create_ticket\nTicket: Every API call has returned 500 since 09:00.');
    assert.equal(one.sample.request.tools.length, 1);
    assert.equal((await adminGet(gw, '/admin/prompts/triage/v9')).status, 404);
    assert.equal((await adminGet(gw, '/admin/prompts', APP_KEY)).status, 401);
  });
});
