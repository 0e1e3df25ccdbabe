import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { startFakeOpenAI, type FakeOpenAI } from '../helpers/fake-openai.js';
import { APP_KEY, startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { TEST_POLICIES, WITH_POLICIES } from '../policy/fixtures.js';

// A JSON answer the gateway does not change goes to the app as the upstream's
// bytes; one it changes (a restored redaction, a judged tool call, a field
// the adapter filled in, a member named twice) is serialised from what the
// gateway read. Either way the audit record hashes what the app got.

const sha = (text: string) => createHash('sha256').update(text).digest('hex');

/** An answer no JSON.stringify would write: spaces, an escaped é, a number past double precision, members in an odd order. */
function oddAnswer(o: { content?: string; toolCalls?: string } = {}): string {
  const message = o.toolCalls
    ? `{ "role" : "assistant", "content" : null, "tool_calls" : ${o.toolCalls} }`
    : `{ "content" : ${o.content === undefined ? '"caf\\u00e9 au lait"' : JSON.stringify(o.content)}, "role" : "assistant" }`;
  return (
    `{ "object" : "chat.completion", "id" : "chatcmpl-odd", "created" : 17000000000000000001, "model" : "gpt-4o-mini-2024",` +
    ` "choices" : [ { "message" : ${message}, "index" : 0, "finish_reason" : "${o.toolCalls ? 'tool_calls' : 'stop'}" } ],` +
    ` "usage" : { "prompt_tokens" : 5, "completion_tokens" : 3, "total_tokens" : 8 }, "service_tier" : "default" }`
  );
}

describe('verbatim answers', () => {
  let upstream: FakeOpenAI;
  let gw: TestGateway;
  before(async () => {
    upstream = await startFakeOpenAI();
    gw = await startTestGateway({ openaiUrl: upstream.url, extra: WITH_POLICIES, files: { 'policies/lanes.yaml': TEST_POLICIES } });
  });
  after(async () => {
    await gw.close();
    await upstream.close();
  });

  const chat = (body: object, headers: Record<string, string> = {}) =>
    fetch(`${gw.baseURL}/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${APP_KEY}`, 'content-type': 'application/json', ...headers },
      body: JSON.stringify({ model: 'gpt-fake', ...body }),
    });
  const user = (content: string) => [{ role: 'user', content }];
  const recordOf = async (requestId: string | null) => {
    const record = (await gw.auditRecords()).find((r) => r.id === requestId);
    assert.ok(record, 'the request has its audit record');
    return record as { bodies: { response_sha256: string }; usage: { total_tokens: number } };
  };

  it('verbatim – an answer nothing changes reaches the app byte for byte, with the gateway headers', async () => {
    const answer = oddAnswer();
    upstream.script({ answer });
    const res = await chat({ messages: user('hello') });
    assert.equal(res.status, 200);
    const text = await res.text();
    assert.equal(text, answer, 'the upstream bytes, not a re-serialisation');
    assert.equal(res.headers.get('content-length'), String(Buffer.byteLength(answer)));
    assert.equal(res.headers.get('content-type'), 'application/json');
    assert.ok(res.headers.get('x-request-id'));
    assert.equal(res.headers.get('x-gateway-lane'), 'green');
    const record = await recordOf(res.headers.get('x-request-id'));
    assert.equal(record.bodies.response_sha256, sha(answer), 'the audit hashes the bytes the app got');
    assert.equal(record.usage.total_tokens, 8);
  });

  it('verbatim – an allowed tool call passes byte for byte too', async () => {
    const answer = oddAnswer({ toolCalls: '[ { "id" : "call_1", "type" : "function", "function" : { "name" : "search", "arguments" : "{\\"q\\": \\"parcel\\"}" } } ]' });
    upstream.script({ answer });
    const res = await chat({ messages: user('find my parcel'), tools: [{ type: 'function', function: { name: 'search', parameters: { type: 'object' } } }] });
    assert.equal(res.status, 200);
    assert.equal(await res.text(), answer);
  });

  it('rewritten – a restored redaction changes the answer: the app gets its value, never the placeholder', async () => {
    const email = 'jane.doe@corp.example.org';
    upstream.script({ answer: oddAnswer({ content: 'I will write to [EMAIL_1] today' }) });
    const res = await chat({ messages: user(`write to ${email}`) }, { 'x-gateway-lane': 'amber' });
    assert.equal(res.status, 200);
    assert.ok(!upstream.calls.at(-1)!.rawBody.includes(email), 'the address never left the gateway');
    const text = await res.text();
    const body = JSON.parse(text) as { choices: Array<{ message: { content: string } }>; service_tier: string };
    assert.equal(body.choices[0]!.message.content, `I will write to ${email} today`);
    assert.equal(body.service_tier, 'default', 'fields the gateway does not read still pass');
    const record = await recordOf(res.headers.get('x-request-id'));
    assert.equal(record.bodies.response_sha256, sha(text));
  });

  it('rewritten – a call to a tool the request did not offer is taken out of the answer', async () => {
    upstream.script({ answer: oddAnswer({ toolCalls: '[ { "id" : "call_1", "type" : "function", "function" : { "name" : "update_ticket", "arguments" : "{\\"status\\": \\"closed\\"}" } } ]' }) });
    const res = await chat({ messages: user('find my parcel'), tools: [{ type: 'function', function: { name: 'search', parameters: { type: 'object' } } }] });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('x-gateway-tool-calls-blocked'), '1');
    const text = await res.text();
    const body = JSON.parse(text) as { choices: Array<{ message: { tool_calls?: unknown }; finish_reason: string }> };
    assert.equal(body.choices[0]!.message.tool_calls, undefined, text);
    assert.equal(body.choices[0]!.finish_reason, 'stop');
  });

  it('rewritten – a usage without its total is completed, and the app gets the completed answer', async () => {
    upstream.script({ answer: oddAnswer().replace(', "total_tokens" : 8', '') });
    const res = await chat({ messages: user('hello') });
    const body = JSON.parse(await res.text()) as { usage: { total_tokens: number } };
    assert.equal(body.usage.total_tokens, 8);
  });

  it('rewritten – a member named twice: the app gets what the guard judged (the last), not the bytes a first-wins parser would read', async () => {
    const evil = '[ { "message" : { "role" : "assistant", "content" : null, "tool_calls" : [ { "id" : "c", "type" : "function", "function" : { "name" : "shell", "arguments" : "{}" } } ] }, "index" : 0, "finish_reason" : "tool_calls" } ]';
    const answer = oddAnswer({ content: 'all good' }).replace('{ "object"', `{ "choices" : ${evil}, "object"`);
    upstream.script({ answer });
    const res = await chat({ messages: user('hello') });
    const text = await res.text();
    assert.notEqual(text, answer);
    assert.ok(!text.includes('shell'), text);
    assert.equal((JSON.parse(text) as { choices: Array<{ message: { content: string } }> }).choices[0]!.message.content, 'all good');
  });
});
