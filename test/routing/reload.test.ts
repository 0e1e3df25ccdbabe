import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import { startFakeOpenAI, type FakeOpenAI } from '../helpers/fake-openai.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { adminPost, APP_KEY, metricValue, openaiProvider, postChat, routingConfig, waitFor } from '../helpers/routing.js';

function config(upstreamUrl: string, extraModels = '', routes = ''): string {
  return routingConfig(`
providers:
  up: ${openaiProvider(upstreamUrl, 'retry: { max_retries: 0 }, breaker: { enabled: false }')}
  mock: { type: mock }
models:
  slow: { deployments: [{ provider: up, model: m }] }
${extraModels}
${routes}`);
}

async function rewrite(gw: TestGateway, yaml: string): Promise<void> {
  await writeFile(gw.configFile, yaml.replaceAll('{{dir}}', gw.dir));
}

async function modelIds(gw: TestGateway): Promise<string[]> {
  const res = await fetch(`${gw.baseURL}/models`, { headers: { authorization: `Bearer ${APP_KEY}` } });
  assert.equal(res.status, 200);
  return ((await res.json()) as { data: Array<{ id: string }> }).data.map((m) => m.id);
}

describe('config reload', () => {
  let upstream: FakeOpenAI;
  let gw: TestGateway;
  before(async () => {
    upstream = await startFakeOpenAI();
    gw = await startTestGateway({ yaml: config(upstream.url) });
  });
  after(async () => {
    await gw.close();
    await upstream.close();
  });

  it('reload – a valid config is swapped in while a stream is in flight, and the stream still finishes', async () => {
    upstream.script({ chunkDelayMs: 100 });
    const words = 'w1 w2 w3 w4 w5 w6 w7 w8';
    const res = await postChat(gw, { model: 'slow', stream: true, messages: [{ role: 'user', content: words }] });
    assert.equal(res.status, 200);
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let text = decoder.decode((await reader.read()).value, { stream: true }); // under way

    await rewrite(gw, config(upstream.url, '  added: { deployments: [{ provider: mock, model: added-m }] }'));
    const reload = await adminPost(gw, '/admin/reload');
    assert.equal(reload.status, 200);
    assert.deepEqual(await reload.json(), { ok: true, restart_required: [] });

    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
    }
    // SSE comments (the stream's cost, x-gateway-cost-usd) are not events.
    const events = text.split('\n\n').filter((e) => e && !e.startsWith(':'));
    assert.equal(events.at(-1), 'data: [DONE]');
    assert.ok(!text.includes('"error"'), text);
    const content = events
      .slice(0, -1)
      .map((e) => JSON.parse(e.slice('data: '.length)) as { choices: Array<{ delta?: { content?: string } }> })
      .map((c) => c.choices[0]?.delta?.content ?? '')
      .join('');
    assert.equal(content, `Hello from fake-openai: ${words}`);

    const answer = await gw.client().chat.completions.create({ model: 'added', messages: [{ role: 'user', content: 'new model' }] });
    assert.equal(answer.choices[0]!.message.content, 'Echo: new model');
    assert.ok((await modelIds(gw)).includes('added'));
  });

  it('reload – an invalid config is rejected with 422 naming the path, and the old one keeps serving', async () => {
    await rewrite(
      gw,
      config(
        upstream.url,
        '',
        `routes:
  auto:
    rules:
      - { name: first, match: { priority: [high] }, model: missing-model }
      - { name: rest, default: true, model: slow }`,
      ),
    );
    const res = await adminPost(gw, '/admin/reload');
    assert.equal(res.status, 422);
    // OpenAI's error shape, as every other error the gateway answers with.
    const { error } = (await res.json()) as { error: { message: string; type: string; code: string; param: null } };
    assert.equal(error.code, 'invalid_config');
    assert.equal(error.type, 'invalid_request_error');
    assert.equal(error.param, null);
    assert.match(error.message, /routes\.auto\.rules\[0\]\.model: unknown model "missing-model"/);
    assert.ok(error.message.includes(gw.configFile), 'the problem names the file');

    // still the config from the previous test: `added` answers, `auto` does not exist
    const answer = await gw.client().chat.completions.create({ model: 'added', messages: [{ role: 'user', content: 'still here' }] });
    assert.equal(answer.choices[0]!.message.content, 'Echo: still here');
    const auto = await postChat(gw, { model: 'auto' });
    assert.equal(auto.status, 404);
    assert.equal(await metricValue(gw, 'lanegate_config_reloads_total{result="error"}'), 1);
    assert.equal(await metricValue(gw, 'lanegate_config_reloads_total{result="ok"}'), 1);

    await writeFile(gw.configFile, 'models: [unclosed\n  providers: {');
    const broken = await adminPost(gw, '/admin/reload');
    assert.equal(broken.status, 422);
    assert.match(((await broken.json()) as { error: { message: string } }).error.message, /YAML syntax/);
    assert.equal(await metricValue(gw, 'lanegate_config_reloads_total{result="error"}'), 2);
    assert.ok((await modelIds(gw)).includes('added'));
  });

  it('reload – POST /admin/reload needs the admin key', async () => {
    const res = await fetch(`${gw.url}/admin/reload`, { method: 'POST' });
    assert.equal(res.status, 401);
    const app = await fetch(`${gw.url}/admin/reload`, { method: 'POST', headers: { authorization: `Bearer ${APP_KEY}` } });
    assert.equal(app.status, 401);
  });
});

describe('config reload – file watch', () => {
  let upstream: FakeOpenAI;
  let gw: TestGateway;
  before(async () => {
    upstream = await startFakeOpenAI();
    gw = await startTestGateway({ yaml: config(upstream.url), watch: true });
  });
  after(async () => {
    await gw.close();
    await upstream.close();
  });

  it('reload – editing the watched file adds the new model within a few seconds', async () => {
    assert.ok(!(await modelIds(gw)).includes('watched'));
    await rewrite(gw, config(upstream.url, '  watched: { deployments: [{ provider: mock, model: w }] }'));
    await waitFor('the new model in GET /v1/models', async () => ((await modelIds(gw)).includes('watched') ? true : undefined), 5000);
    const answer = await gw.client().chat.completions.create({ model: 'watched', messages: [{ role: 'user', content: 'seen' }] });
    assert.equal(answer.choices[0]!.message.content, 'Echo: seen');
  });
});
