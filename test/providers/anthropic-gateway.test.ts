import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import OpenAI from 'openai';
import { startFakeAnthropic, type FakeAnthropic } from '../helpers/fake-anthropic.js';
import { startTestGateway, UPSTREAM_SECRET, type TestGateway } from '../helpers/gateway.js';

describe('anthropic through the gateway', () => {
  let upstream: FakeAnthropic;
  let gw: TestGateway;
  before(async () => {
    upstream = await startFakeAnthropic();
    gw = await startTestGateway({ anthropicUrl: upstream.url });
  });
  after(async () => {
    await gw.close();
    await upstream.close();
  });

  it('anthropic – the OpenAI SDK gets a translated answer, with the system prompt sent as `system`', async () => {
    const res = await gw.client().chat.completions.create({
      model: 'claude-fake',
      messages: [
        { role: 'system', content: 'be brief' },
        { role: 'user', content: 'hello claude' },
      ],
      max_tokens: 50,
    });
    assert.equal(res.choices[0]!.message.content, 'Anthropic echo: hello claude');
    assert.equal(res.choices[0]!.finish_reason, 'stop');
    assert.ok(res.usage!.prompt_tokens > 0 && res.usage!.completion_tokens > 0);
    const call = upstream.calls.at(-1)!;
    assert.equal(call.path, '/v1/messages');
    assert.equal(call.headers['x-api-key'], UPSTREAM_SECRET);
    assert.equal(call.headers.authorization, undefined);
    assert.equal(call.body.system, 'be brief');
    assert.equal(call.body.model, 'claude-3-5-haiku-latest');
    assert.equal(call.body.max_tokens, 50);
  });

  it('anthropic – tool use streams back as OpenAI tool_calls', async () => {
    const stream = await gw.client().chat.completions.create({
      model: 'claude-fake',
      stream: true,
      stream_options: { include_usage: true },
      tools: [{ type: 'function', function: { name: 'lookup', parameters: { type: 'object', properties: { query: { type: 'string' } } } } }],
      messages: [{ role: 'user', content: 'please use tool to find it' }],
    });
    let name = '';
    let args = '';
    let finish = '';
    let usage;
    for await (const chunk of stream) {
      const call = chunk.choices[0]?.delta?.tool_calls?.[0];
      if (call?.function?.name) name = call.function.name;
      args += call?.function?.arguments ?? '';
      finish = chunk.choices[0]?.finish_reason ?? finish;
      if (chunk.usage) usage = chunk.usage;
    }
    assert.equal(name, 'lookup');
    assert.deepEqual(JSON.parse(args), { query: 'please use tool to find it' });
    assert.equal(finish, 'tool_calls');
    assert.ok(usage && usage.completion_tokens > 0);
  });

  it('anthropic – a tool result round trip is translated to tool_result blocks', async () => {
    await gw.client().chat.completions.create({
      model: 'claude-fake',
      messages: [
        { role: 'user', content: 'find x' },
        { role: 'assistant', content: null, tool_calls: [{ id: 'toolu_1', type: 'function', function: { name: 'lookup', arguments: '{"query":"x"}' } }] },
        { role: 'tool', tool_call_id: 'toolu_1', content: 'x is 42' },
      ],
    });
    const messages = upstream.calls.at(-1)!.body.messages as Array<{ role: string; content: Array<Record<string, unknown>> }>;
    assert.equal(messages[1]!.content[0]!.type, 'tool_use');
    assert.deepEqual(messages[1]!.content[0]!.input, { query: 'x' });
    assert.equal(messages[2]!.role, 'user');
    assert.equal(messages[2]!.content[0]!.type, 'tool_result');
    assert.equal(messages[2]!.content[0]!.tool_use_id, 'toolu_1');
  });

  it('anthropic – overloaded (529) maps to a retryable 503, and bodies never leak', async () => {
    upstream.script({ status: 529 });
    const err = await gw
      .client()
      .chat.completions.create({ model: 'claude-fake', messages: [{ role: 'user', content: 'x' }] })
      .catch((e: unknown) => e);
    assert.ok(err instanceof OpenAI.APIError);
    assert.equal(err.status, 503);
    assert.equal((err.error as { code?: string }).code, 'upstream_unavailable');
    assert.doesNotMatch(JSON.stringify(err.error), /sk-ant-internal/);
  });
});
