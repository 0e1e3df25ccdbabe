import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startFakeOpenAI, type FakeOpenAI } from '../helpers/fake-openai.js';
import { APP_KEY, startTestGateway, UPSTREAM_SECRET, type TestGateway } from '../helpers/gateway.js';

describe('chat completions', () => {
  let upstream: FakeOpenAI;
  let gw: TestGateway;
  before(async () => {
    upstream = await startFakeOpenAI();
    gw = await startTestGateway({ openaiUrl: upstream.url });
  });
  after(async () => {
    await gw.close();
    await upstream.close();
  });

  it('chat – the OpenAI SDK gets an answer from the built-in mock', async () => {
    const res = await gw.client().chat.completions.create({ model: 'fast', messages: [{ role: 'user', content: 'hello there' }] });
    assert.equal(res.choices[0]!.message.content, 'Echo: hello there');
    assert.equal(res.usage!.completion_tokens, 3);
    assert.ok(res.usage!.prompt_tokens > 0);
  });

  it('chat – forwards the validated request with every field, and upstream credentials only', async () => {
    const before = upstream.calls.length;
    const raw = await fetch(`${gw.baseURL}/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${APP_KEY}`, 'content-type': 'application/json', connection: 'keep-alive', 'x-forwarded-host': 'evil.example' },
      body: JSON.stringify({
        model: 'gpt-fake',
        messages: [{ role: 'user', content: 'pass me through' }],
        tools: [{ type: 'function', function: { name: 'lookup', parameters: { type: 'object' } } }],
        response_format: { type: 'json_schema', json_schema: { name: 'out', schema: { type: 'object' } } },
        n: 2,
        seed: 7,
        user: 'end-user-1',
        some_future_param: { nested: [1, 2] },
      }),
    });
    assert.equal(raw.status, 200);
    const body = await raw.json();
    assert.equal(body.choices.length, 2);
    assert.equal(body.extra_upstream_field, 'kept');
    assert.equal(body.system_fingerprint, 'fp_fake');
    assert.match(raw.headers.get('x-request-id') ?? '', /^[0-9a-f-]{36}$/);
    assert.equal(upstream.calls.length, before + 1);
    const call = upstream.calls.at(-1)!;
    assert.equal(call.path, '/v1/chat/completions');
    assert.equal(call.headers.authorization, `Bearer ${UPSTREAM_SECRET}`);
    assert.equal(call.headers['x-forwarded-host'], undefined);
    assert.equal(call.body.model, 'gpt-4o-mini');
    assert.deepEqual(call.body.some_future_param, { nested: [1, 2] });
    assert.equal(call.body.seed, 7);
    assert.equal(call.body.n, 2);
    assert.equal(call.body.user, 'end-user-1');
    assert.deepEqual(call.body.response_format, { type: 'json_schema', json_schema: { name: 'out', schema: { type: 'object' } } });
    assert.equal((call.body.tools as unknown[]).length, 1);
  });

  it('chat – duplicate JSON keys: upstream sees exactly what the gateway parsed', async () => {
    const raw = await fetch(`${gw.baseURL}/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${APP_KEY}`, 'content-type': 'application/json' },
      body: '{"model":"fast","model":"gpt-fake","messages":[{"role":"user","content":"dup"}]}',
    });
    assert.equal(raw.status, 200);
    const call = upstream.calls.at(-1)!;
    assert.equal(call.rawBody, JSON.stringify(JSON.parse(call.rawBody)));
    assert.equal((call.body.messages as Array<{ content: string }>)[0]!.content, 'dup');
    assert.equal(call.rawBody.match(/"model"/g)!.length, 1);
  });

  it('stream – chunks arrive through the SDK and usage is sent only when asked', async () => {
    const client = gw.client();
    const stream = await client.chat.completions.create({ model: 'gpt-fake', stream: true, messages: [{ role: 'user', content: 'one two three' }] });
    let text = '';
    let usageSeen = false;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta?.content ?? '';
      if (chunk.usage) usageSeen = true;
    }
    assert.equal(text, 'Hello from fake-openai: one two three');
    assert.equal(usageSeen, false);
    // the gateway asked upstream for usage anyway
    assert.deepEqual(upstream.calls.at(-1)!.body.stream_options, { include_usage: true });

    const withUsage = await client.chat.completions.create({
      model: 'gpt-fake',
      stream: true,
      stream_options: { include_usage: true },
      messages: [{ role: 'user', content: 'count me' }],
    });
    let usage;
    for await (const chunk of withUsage) if (chunk.usage) usage = chunk.usage;
    assert.deepEqual(usage, { prompt_tokens: 11, completion_tokens: 5, total_tokens: 16 });
  });

  it('stream – tool calls are streamed and reassemble to valid arguments', async () => {
    const stream = await gw.client().chat.completions.create({
      model: 'gpt-fake',
      stream: true,
      tools: [{ type: 'function', function: { name: 'search', parameters: { type: 'object', properties: {} } } }],
      messages: [{ role: 'user', content: 'please use tool now' }],
    });
    let args = '';
    let name = '';
    let finish = '';
    for await (const chunk of stream) {
      const call = chunk.choices[0]?.delta?.tool_calls?.[0];
      if (call?.function?.name) name = call.function.name;
      args += call?.function?.arguments ?? '';
      finish = chunk.choices[0]?.finish_reason ?? finish;
    }
    assert.equal(name, 'search');
    assert.deepEqual(JSON.parse(args), { query: 'please use tool now' });
    assert.equal(finish, 'tool_calls');
  });

  it('stream – the mock streams word by word and reports usage', async () => {
    const stream = await gw.client().chat.completions.create({
      model: 'fast',
      stream: true,
      stream_options: { include_usage: true },
      messages: [{ role: 'user', content: 'a b c' }],
    });
    const pieces: string[] = [];
    let usage;
    for await (const chunk of stream) {
      if (chunk.choices[0]?.delta?.content) pieces.push(chunk.choices[0].delta.content);
      if (chunk.usage) usage = chunk.usage;
    }
    assert.equal(pieces.join(''), 'Echo: a b c');
    assert.ok(pieces.length >= 4);
    assert.equal(usage?.completion_tokens, 4);
  });

  it('usage – counted with tiktoken when the upstream reports none', async () => {
    upstream.script({ omitUsage: true });
    const res = await gw.client().chat.completions.create({ model: 'gpt-fake', messages: [{ role: 'user', content: 'no usage please' }] });
    assert.ok(res.usage, 'usage is filled in');
    assert.ok(res.usage.completion_tokens > 3 && res.usage.completion_tokens < 20, `completion tokens ${res.usage.completion_tokens}`);
    assert.ok(res.usage.prompt_tokens > 3);
    upstream.script({ omitUsage: true });
    const stream = await gw.client().chat.completions.create({
      model: 'gpt-fake',
      stream: true,
      stream_options: { include_usage: true },
      messages: [{ role: 'user', content: 'stream without usage' }],
    });
    let usage;
    for await (const chunk of stream) if (chunk.usage) usage = chunk.usage;
    assert.ok(usage && usage.completion_tokens > 3);
  });

  it('audit – one record per request with key, model, deployment and usage', async () => {
    const res = await gw.client().chat.completions.create({ model: 'fast', messages: [{ role: 'user', content: 'audit me' }] });
    assert.ok(res.id);
    const records = await gw.auditRecords();
    const record = records.find((r) => (r.usage as { completion_tokens?: number } | null)?.completion_tokens === 3 && r.model === 'fast');
    assert.ok(record, 'record written');
    assert.equal(record.key_id, 'alpha');
    assert.equal(record.team, 'team-alpha');
    assert.equal(record.deployment, 'mock/mock-fast');
    assert.equal(record.status, 200);
    assert.equal(record.v, 2);
  });

  it('models – lists what the key may call', async () => {
    const all = await gw.client().models.list();
    const ids = all.data.map((m) => m.id).sort();
    assert.ok(ids.includes('fast') && ids.includes('gpt-fake') && ids.includes('embed-fake'));
    const { OTHER_KEY } = await import('../helpers/gateway.js');
    const limited = await gw.client(OTHER_KEY).models.list();
    assert.deepEqual(limited.data.map((m) => m.id), ['fast']);
  });
});
