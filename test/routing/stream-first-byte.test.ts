// A stream's first content chunk: it reaches the app as soon as the provider
// sent it (the gateway commits after the first chunk, and buffers nothing
// after that), the audit intent is written while the provider is still
// working rather than after it answered, and a provider that fails before its
// first content chunk is still replaced by the next candidate.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { auditRecordFor, openaiProvider, routingConfig } from '../helpers/routing.js';
import { startScriptedServer, type ScriptedServer } from '../helpers/scripted-server.js';

const chunk = (model: string, delta: Record<string, string>, finish: string | null = null) =>
  `data: ${JSON.stringify({ id: 'chatcmpl-first', object: 'chat.completion.chunk', created: 1_700_000_000, model, choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;
const usage = (model: string) =>
  `data: ${JSON.stringify({ id: 'chatcmpl-first', object: 'chat.completion.chunk', created: 1_700_000_000, model, choices: [], usage: { prompt_tokens: 5, completion_tokens: 3, total_tokens: 8 } })}\n\n`;

/** The request ids in the audit intent log right now. */
function intentIds(auditDir: string): Set<string> {
  const dir = path.join(auditDir, 'intents');
  const ids = new Set<string>();
  let files: string[];
  try {
    files = readdirSync(dir);
  } catch {
    return ids;
  }
  for (const file of files) {
    for (const line of readFileSync(path.join(dir, file), 'utf8').split('\n').slice(1)) if (line) ids.add(line.split('\t')[0]!);
  }
  return ids;
}

describe('stream first byte', () => {
  let paced: ScriptedServer;
  let failing: ScriptedServer;
  let gw: TestGateway;
  /** What the paced upstream does, in order, beside what the app saw. */
  const order: string[] = [];
  let releaseSecond: () => void = () => {};
  /** The intent log as it was when the paced upstream got its request. */
  let intentsAtUpstream = new Set<string>();

  before(async () => {
    paced = await startScriptedServer(() => {
      intentsAtUpstream = intentIds(path.join(gw.dir, 'audit'));
      const second = new Promise<void>((resolve) => {
        releaseSecond = resolve;
        // Never hang the suite: a gateway that holds the first chunk fails the order check below instead.
        setTimeout(resolve, 5_000).unref();
      });
      return {
        body: (async function* () {
          order.push('upstream sent the first chunk');
          yield chunk('paced-m', { role: 'assistant', content: 'Hello' });
          await second;
          order.push('upstream sends the second chunk');
          yield chunk('paced-m', { content: ' there' });
          yield chunk('paced-m', { content: '!' }, 'stop');
          yield usage('paced-m');
          yield 'data: [DONE]\n\n';
        })(),
      };
    });
    // Answers 200, then its role chunk, then an error event: it failed before any content.
    failing = await startScriptedServer(() => ({
      body: (async function* () {
        yield chunk('failing-m', { role: 'assistant' });
        yield `data: ${JSON.stringify({ error: { message: 'the model crashed', type: 'server_error' } })}\n\n`;
      })(),
    }));
    gw = await startTestGateway({
      yaml: routingConfig(`
providers:
  paced: ${openaiProvider(paced.url, 'breaker: { enabled: false }')}
  failing: ${openaiProvider(failing.url, 'breaker: { enabled: false }')}
models:
  paced:
    deployments:
      - { provider: paced, model: paced-m }
  fails-first:
    deployments:
      - { provider: failing, model: failing-m, retry: { max_retries: 0 } }
      - { provider: paced, model: paced-m }
`),
    });
  });
  after(async () => {
    await gw.close();
    await Promise.all([paced.close(), failing.close()]);
  });

  it('stream – the first content chunk reaches the app before the provider sends its second, and the audit intent was written before the provider answered', async () => {
    order.length = 0;
    const { data: stream, response } = await gw
      .client()
      .chat.completions.create({ model: 'paced', stream: true, messages: [{ role: 'user', content: 'hi' }] })
      .withResponse();
    let text = '';
    for await (const part of stream) {
      const content = part.choices[0]?.delta?.content ?? '';
      if (content && text === '') {
        order.push('the app got the first chunk');
        releaseSecond();
      }
      text += content;
    }
    assert.equal(text, 'Hello there!');
    assert.deepEqual(order, ['upstream sent the first chunk', 'the app got the first chunk', 'upstream sends the second chunk']);
    const id = response.headers.get('x-request-id');
    assert.ok(id);
    // Written as the upstream call started, so the answer never waits a turn for it (fails when the intent follows the first chunk).
    assert.ok(intentsAtUpstream.has(id), 'the intent was in the log when the provider got the request');
    const record = await auditRecordFor(gw, id);
    assert.equal(record.status, 200);
  });

  it('stream – a provider that answers 200 and then fails before its first content chunk is replaced by the next candidate', async () => {
    const { data: stream, response } = await gw
      .client()
      .chat.completions.create({ model: 'fails-first', stream: true, messages: [{ role: 'user', content: 'hi' }] })
      .withResponse();
    let text = '';
    const models = new Set<string>();
    for await (const part of stream) {
      models.add(part.model);
      const content = part.choices[0]?.delta?.content ?? '';
      if (content && text === '') releaseSecond();
      text += content;
    }
    assert.equal(text, 'Hello there!');
    assert.deepEqual([...models], ['paced-m'], 'nothing of the failed provider reached the app');
    assert.equal(response.headers.get('x-gateway-deployment'), 'paced/paced-m');
    assert.equal(failing.requests.length, 1);
    const record = await auditRecordFor(gw, response.headers.get('x-request-id'));
    assert.deepEqual(
      record.attempts.map((a) => [a.deployment, a.code ?? 'ok']),
      [
        ['failing/failing-m', 'upstream_error'],
        ['paced/paced-m', 'ok'],
      ],
    );
  });
});
