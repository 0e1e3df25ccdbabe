import assert from 'node:assert/strict';
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startFakeAnthropic, type FakeAnthropic } from '../helpers/fake-anthropic.js';
import { startFakeOpenAI, type FakeOpenAI } from '../helpers/fake-openai.js';
import { APP_KEY, startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { routingConfig, waitFor } from '../helpers/routing.js';

const MiB = 1024 * 1024;

// Limits well below the 64 MiB answers sent, so each test moves a few MiB,
// not 32: OpenAI's on the provider, Anthropic's on its deployment (an
// override). Nesting keeps its default of 64 levels. No retries, breaker or
// rest after a 429, so every fault reaches the client as it is.
function config(openaiUrl: string, anthropicUrl: string): string {
  const strict = 'retry: { max_retries: 0 }, breaker: { enabled: false }, timeouts: { connect_ms: 2000, first_byte_ms: 10000, total_ms: 20000 }';
  return routingConfig(`
providers:
  fakeopenai: { type: openai, base_url: "${openaiUrl}/v1", api_key: sk-upstream-test, ${strict}, response_limits: { max_response_bytes: ${4 * MiB}, max_event_bytes: ${MiB} } }
  fakeanthropic: { type: anthropic, base_url: "${anthropicUrl}", api_key: sk-upstream-test, ${strict} }
models:
  gpt-fake: { deployments: [{ provider: fakeopenai, model: gpt-4o-mini }] }
  claude-fake: { deployments: [{ provider: fakeanthropic, model: claude-3-5-haiku-latest, response_limits: { max_response_bytes: ${4 * MiB} } }] }
  embed-fake: { type: embedding, deployments: [{ provider: fakeopenai, model: text-embedding-3-small }] }
`);
}

// A well-formed chat completion whose content is `content`, plus `extra` as one more field.
function completion(content: string, extra = '0'): string {
  return `{"id":"chatcmpl-x","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"${content}"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2},"extra":${extra}}`;
}
const nested = (levels: number) => '['.repeat(levels) + ']'.repeat(levels);
const chunk = (delta: string, finish: string | null = null) =>
  `{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":${delta},"finish_reason":${finish ? `"${finish}"` : 'null'}}]}`;

interface ErrorBody {
  error: { code: string; type: string; message: string };
}

describe('provider answer bounds', () => {
  let openai: FakeOpenAI;
  let anthropic: FakeAnthropic;
  let gw: TestGateway;
  before(async () => {
    [openai, anthropic] = await Promise.all([startFakeOpenAI(), startFakeAnthropic()]);
    gw = await startTestGateway({ yaml: config(openai.url, anthropic.url) });
  });
  after(async () => {
    await gw.close();
    await Promise.all([openai.close(), anthropic.close()]);
  });

  const ask = (model: string, extra: Record<string, unknown> = {}) =>
    fetch(`${gw.baseURL}/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${APP_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model, messages: [{ role: 'user', content: 'hi' }], ...extra }),
    });

  async function auditBytes(): Promise<number> {
    await gw.gateway.audit.flush();
    const dir = path.join(gw.dir, 'audit');
    let total = 0;
    for (const name of await readdir(dir).catch(() => [])) total += (await stat(path.join(dir, name))).size;
    return total;
  }

  it('answer bounds – a 64 MiB answer gets 502 upstream_error, the upstream connection is closed, and the audit never holds it', async () => {
    const before = await auditBytes();
    openai.script({ answer: completion('a'.repeat(64 * MiB)) });
    const res = await ask('gpt-fake');
    assert.equal(res.status, 502);
    const body = (await res.json()) as ErrorBody;
    assert.equal(body.error.code, 'upstream_error');
    assert.match(body.error.message, /larger than the limit of 4194304 bytes/);
    await waitFor('the upstream to see its connection closed', () => (openai.aborted === 1 ? true : undefined));

    const record = (await gw.auditRecords()).find((r) => r.id === res.headers.get('x-request-id'));
    assert.equal(record?.error_code, 'upstream_error');
    assert.ok((await auditBytes()) - before < 64 * 1024, 'the audit trail grew by one small record, not the answer');

    const after = await ask('gpt-fake');
    assert.equal(after.status, 200, 'the gateway serves on');
    await after.json();
  });

  it('answer bounds – Anthropic answers have the same limit: 502 and the connection closed', async () => {
    const huge = `{"id":"msg_1","type":"message","role":"assistant","model":"c","content":[{"type":"text","text":"${'b'.repeat(64 * MiB)}"}],"stop_reason":"end_turn","usage":{"input_tokens":1,"output_tokens":1}}`;
    anthropic.script({ answer: huge });
    const res = await ask('claude-fake');
    assert.equal(res.status, 502);
    assert.equal(((await res.json()) as ErrorBody).error.code, 'upstream_error');
    await waitFor('the upstream to see its connection closed', () => (anthropic.aborted === 1 ? true : undefined));
  });

  it('answer bounds – an answer nested 5,000 levels deep gets 502 upstream_error, not 500', async () => {
    openai.script({ answer: completion('hi', nested(5000)) });
    const res = await ask('gpt-fake');
    assert.equal(res.status, 502);
    const body = (await res.json()) as ErrorBody;
    assert.equal(body.error.code, 'upstream_error');
    assert.match(body.error.message, /nested deeper than the limit of 64 levels/);

    anthropic.script({ answer: `{"id":"m","content":[{"type":"tool_use","id":"t","name":"f","input":{"a":${nested(5000)}}}],"stop_reason":"tool_use"}` });
    const claude = await ask('claude-fake');
    assert.equal(claude.status, 502);
    assert.equal(((await claude.json()) as ErrorBody).error.code, 'upstream_error');
  });

  it('answer bounds – a stream event over max_event_bytes ends the stream with one SSE error event and [DONE], and closes the upstream connection', async () => {
    const abortedBefore = openai.aborted;
    // The rest of the stream is far more than socket buffers hold, so the
    // upstream can only finish it if the gateway keeps reading.
    openai.script({
      events: [chunk('{"role":"assistant","content":""}'), chunk('{"content":"Hello"}'), chunk(`{"content":"${'c'.repeat(2 * MiB)}"}`), ...Array<string>(100).fill(chunk(`{"content":"${'d'.repeat(MiB / 2)}"}`)), chunk('{}', 'stop'), '[DONE]'],
    });
    const res = await ask('gpt-fake', { stream: true });
    assert.equal(res.status, 200);
    const text = await res.text();
    const events = text.split('\n\n').filter(Boolean);
    const errors = events.filter((e) => e.includes('"error"'));
    assert.equal(errors.length, 1, text.slice(0, 2000));
    const error = JSON.parse(errors[0]!.slice('data: '.length)) as ErrorBody;
    assert.equal(error.error.code, 'upstream_error');
    assert.match(error.error.message, /stream event larger than the limit of 1048576 bytes/);
    assert.equal(events.at(-1), 'data: [DONE]');
    assert.ok(events.some((e) => e.includes('Hello')), 'content from before the big event was delivered');
    assert.ok(!text.includes('ccccc'), 'none of the big event was relayed');
    await waitFor('the upstream to see its connection closed', () => (openai.aborted > abortedBefore ? true : undefined));
  });

  it('answer bounds – a stream whose first event is nested 5,000 deep gets 502 before any byte is sent', async () => {
    openai.script({ events: [chunk(`{"role":"assistant","content":"","x":${nested(5000)}}`), '[DONE]'] });
    const res = await ask('gpt-fake', { stream: true });
    assert.equal(res.status, 502);
    assert.equal(((await res.json()) as ErrorBody).error.code, 'upstream_error');

    anthropic.script({ events: [`{"type":"message_start","message":{"id":"m","usage":${nested(5000)}}}`] });
    const claude = await ask('claude-fake', { stream: true });
    assert.equal(claude.status, 502);
    assert.equal(((await claude.json()) as ErrorBody).error.code, 'upstream_error');
  });
});
