// The governance stages on POST /v1/responses: detectors on input items,
// tool policy, budgets in OpenAI's error shape, a stream cut mid-answer, and
// stored responses scoped to the key's team and its lane's audit rule.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import OpenAI, { type APIError } from 'openai';
import { startFakeOpenAI, type FakeOpenAI } from '../helpers/fake-openai.js';
import { APP_KEY, OTHER_KEY, startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { TEST_POLICIES, WITH_POLICIES } from '../policy/fixtures.js';

const BUDGETS = `
pricing:
  mock-fast: { input: 10, output: 10, max_output_tokens: 50 }
budgets:
  rules:
    - { name: beta-nothing, scope: team, match: [team-beta], period: day, usd: 0.0000001 }
`;

describe('responses API under the gateway\'s governance', () => {
  let upstream: FakeOpenAI;
  let gw: TestGateway;
  let client: OpenAI;
  before(async () => {
    upstream = await startFakeOpenAI();
    gw = await startTestGateway({ openaiUrl: upstream.url, extra: WITH_POLICIES + BUDGETS, files: { 'policies/lanes.yaml': TEST_POLICIES } });
    client = gw.client();
  });
  after(async () => {
    await gw.close();
    await upstream.close();
  });

  it('detectors – a card number in an input item escalates to red, which redacts it upstream and restores it in the answer', async () => {
    const card = '4111 1111 1111 1111';
    const input = [{ role: 'user' as const, content: [{ type: 'input_text' as const, text: `my card is ${card}` }] }];
    const calls = upstream.calls.length;
    // red allows only the mock deployment.
    await assert.rejects(client.responses.create({ model: 'gpt-fake', input, metadata: { purpose: 'billing' } }), (err: APIError) => err.status === 403);
    assert.equal(upstream.calls.length, calls, 'nothing went upstream');
    const { data, response } = await client.responses.create({ model: 'fast', input, metadata: { purpose: 'billing' } }).withResponse();
    assert.equal(response.headers.get('x-gateway-lane'), 'red');
    // The mock echoes what it received (the placeholder); the guard restores it on the way back.
    assert.equal(data.output_text, `Echo: my card is ${card}`);
    const record = (await gw.auditRecords()).find((r) => r.id === response.headers.get('x-request-id'))!;
    assert.equal((record.lane as { name: string }).name, 'red');
    assert.equal(record.endpoint, 'responses');
    assert.ok(!JSON.stringify(record).includes('4111'), 'the audit record holds no card number');
    // red keeps redacted bodies and this one had a redaction: the stored response holds hashes only.
    const stored = await client.responses.retrieve(data.id);
    assert.deepEqual(stored.output, []);
    assert.ok(!JSON.stringify(stored).includes('4111'));
    await assert.rejects(
      client.responses.create({ model: 'fast', input: 'go on', previous_response_id: data.id, metadata: { purpose: 'billing' } }),
      (err: APIError) => err.status === 400 && (err.error as { param?: string }).param === 'previous_response_id',
    );
  });

  it('tools – a denied tool is refused before any upstream call', async () => {
    const calls = upstream.calls.length;
    await assert.rejects(
      client.responses.create({ model: 'gpt-fake', input: 'hi', tools: [{ type: 'function', name: 'shell', parameters: { type: 'object' }, strict: false }] }),
      (err: APIError) => err.status === 403 && /does not allow the tool "shell"/.test(err.message),
    );
    assert.equal(upstream.calls.length, calls);
  });

  it('tools – a denied call in the answer is blocked, streamed or not', async () => {
    const tools: OpenAI.Responses.Tool[] = [{ type: 'function', name: 'search', parameters: { type: 'object' }, strict: false }];
    upstream.script({ toolCalls: [{ name: 'shell', arguments: '{"cmd":"rm -rf /"}' }] });
    const r = await client.responses.create({ model: 'gpt-fake', input: 'hi', tools });
    assert.ok(!r.output.some((i) => i.type === 'function_call' && i.name === 'shell'), JSON.stringify(r.output));
    upstream.script({ toolCalls: [{ name: 'shell', arguments: '{"cmd":"rm -rf /"}' }] });
    const stream = client.responses.stream({ model: 'gpt-fake', input: 'hi', tools });
    for await (const event of stream) assert.ok(!(event.type === 'response.output_item.added' && event.item.type === 'function_call' && event.item.name === 'shell'));
  });

  it('budgets – a refusal comes in OpenAI\'s error shape', async () => {
    const res = await fetch(`${gw.baseURL}/responses`, {
      method: 'POST',
      headers: { authorization: `Bearer ${OTHER_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'fast', input: 'hello' }),
    });
    assert.equal(res.status, 429);
    const body = (await res.json()) as { error: { code: string; type: string; message: string; param: unknown } };
    assert.equal(body.error.code, 'budget_exceeded');
    assert.equal(body.error.type, 'insufficient_quota');
    assert.match(body.error.message, /beta-nothing/);
  });

  it('a stream cut after it started ends with response.failed, then an error event', async () => {
    upstream.script({ breakStreamAfterChunks: 3 });
    const res = await fetch(`${gw.baseURL}/responses`, {
      method: 'POST',
      headers: { authorization: `Bearer ${APP_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'gpt-fake', input: 'a long enough answer to be cut somewhere in the middle', stream: true }),
    });
    assert.equal(res.status, 200);
    const events = (await res.text()).split('\n\n').filter(Boolean).map((frame) => JSON.parse(frame.split('\n').find((l) => l.startsWith('data: '))!.slice(6)) as { type: string; response?: { status: string } });
    const types = events.map((e) => e.type);
    assert.equal(types[0], 'response.created');
    assert.ok(types.includes('response.output_text.delta'), types.join(','));
    assert.deepEqual(types.slice(-2), ['response.failed', 'error']);
    assert.equal(events.at(-2)!.response!.status, 'failed');
    const record = (await gw.auditRecords()).find((r) => r.id === res.headers.get('x-request-id'))!;
    assert.ok(record.error_code, 'the audit record says it failed');
  });

  it('stored responses – another team reads, lists and deletes nothing (404)', async () => {
    const r = await client.responses.create({ model: 'gpt-fake', input: 'mine only' });
    const other = new OpenAI({ apiKey: OTHER_KEY, baseURL: gw.baseURL, maxRetries: 0 });
    await assert.rejects(other.responses.retrieve(r.id), (err: APIError) => err.status === 404);
    await assert.rejects(other.responses.inputItems.list(r.id), (err: APIError) => err.status === 404);
    await assert.rejects(other.responses.delete(r.id), (err: APIError) => err.status === 404);
    await assert.rejects(
      other.responses.create({ model: 'fast', input: 'continue', previous_response_id: r.id }),
      (err: APIError) => err.status === 404 && (err.error as { param?: string }).param === 'previous_response_id',
    );
    assert.equal((await client.responses.retrieve(r.id)).id, r.id, 'still there for its own team');
  });
});
