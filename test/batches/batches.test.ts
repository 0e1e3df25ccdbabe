// The Batch API on a single gateway (the journal-file queue), driven with the
// openai SDK against the fake OpenAI upstream: every line answered once and
// matched by custom_id, failures in the error file, cancel, a budget that
// runs out mid-batch, and another team's key.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type OpenAI from 'openai';
import { startFakeOpenAI, type FakeOpenAI } from '../helpers/fake-openai.js';
import { APP_KEY, OTHER_KEY, startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { runCli } from '../helpers/cli.js';
import { chatLines, outputLines, uploadBatchInput, waitForBatch } from '../helpers/batches.js';

describe('batches (single instance)', () => {
  let upstream: FakeOpenAI;
  let gw: TestGateway;
  let client: OpenAI;
  before(async () => {
    upstream = await startFakeOpenAI();
    gw = await startTestGateway({
      openaiUrl: upstream.url,
      extra: `
queue: { concurrency: 4, poll_ms: 20, backoff_ms: 10 }
pricing:
  gpt-4o-mini: { input: 1, output: 2, batch_discount: 0.5 }
budgets:
  rules:
    - { name: beta-requests, scope: team, match: [team-beta], period: day, requests: 5 }
`,
    });
    client = gw.client();
  });
  after(async () => {
    await gw.close();
    await upstream.close();
  });

  it('batches – 50 chat lines completed, each custom_id answered once, one audit record per line', async () => {
    const calls = upstream.calls.length;
    const file = await uploadBatchInput(client, chatLines(50, 'gpt-fake'));
    const created = await client.batches.create({ input_file_id: file.id, endpoint: '/v1/chat/completions', completion_window: '24h', metadata: { job: 'nightly' } });
    assert.equal(created.object, 'batch');
    assert.equal(created.request_counts?.total, 50);
    const done = await waitForBatch(client, created.id);
    assert.equal(done.status, 'completed');
    assert.deepEqual(done.request_counts, { total: 50, completed: 50, failed: 0 });
    assert.deepEqual(done.metadata, { job: 'nightly' });
    assert.equal(done.error_file_id, null);
    const lines = await outputLines(client, done.output_file_id!);
    assert.equal(lines.length, 50);
    assert.deepEqual(lines.map((l) => l.custom_id).sort(), chatLines(50, 'gpt-fake').map((l) => l.custom_id).sort());
    for (const l of lines) {
      assert.equal(l.response?.status_code, 200);
      assert.match(String((l.response?.body as { choices: Array<{ message: { content: string } }> }).choices[0]!.message.content), new RegExp(`line ${l.custom_id.slice(5)}$`));
    }
    assert.equal(upstream.calls.length - calls, 50, 'one upstream call per line');
    const records = (await gw.auditRecords()).filter((r) => r.run_id === created.id);
    assert.equal(records.length, 50, 'one audit record per line, linked to the batch');
    assert.deepEqual(new Set(records.map((r) => r.id)), new Set(lines.map((l) => l.response!.request_id)));
    const metrics = await (await fetch(`${gw.url}/metrics`)).text();
    assert.match(metrics, /lanegate_queue_lines_total\{kind="batch",outcome="ok"\} (\d+)/);
    assert.match(metrics, /lanegate_queue_depth 0/);
    // Batch lines pay the batch price: half of $1/$2 per million tokens here.
    for (const r of records as Array<{ usage: { prompt_tokens: number; completion_tokens: number }; cost: { nano_usd: number } }>) {
      assert.equal(r.cost.nano_usd, Math.round((r.usage.prompt_tokens * 1 + r.usage.completion_tokens * 2) * 1000 * 0.5));
    }
  });

  it('batches – an upstream answer indented over several lines is one output line, its body as the upstream sent it', async () => {
    // What OpenAI itself sends: indented JSON, one member per line, a string holding an escaped line break.
    const answer = JSON.stringify(
      { id: 'chatcmpl-indented', object: 'chat.completion', created: 1, model: 'gpt-4o-mini', choices: [{ index: 0, message: { role: 'assistant', content: 'two\nlines' }, finish_reason: 'stop' }], usage: { prompt_tokens: 3, completion_tokens: 2, total_tokens: 5 } },
      null,
      2,
    );
    upstream.always({ answer });
    try {
      const file = await uploadBatchInput(client, chatLines(3, 'gpt-fake', 'indented '));
      const done = await waitForBatch(client, (await client.batches.create({ input_file_id: file.id, endpoint: '/v1/chat/completions', completion_window: '24h' })).id);
      assert.deepEqual(done.request_counts, { total: 3, completed: 3, failed: 0 });
      const text = await (await client.files.content(done.output_file_id!)).text();
      const lines = text.split('\n').filter(Boolean);
      assert.equal(lines.length, 3, `three output lines:\n${text}`);
      const records = new Map((await gw.auditRecords()).map((r) => [r.id, r as { bodies: { response_sha256: string } }]));
      for (const line of lines) {
        const parsed = JSON.parse(line) as { id: string; response: { body: unknown } };
        assert.deepEqual(parsed.response.body, JSON.parse(answer));
        // The audit record hashes the body text the line holds.
        const bodyText = line.slice(line.indexOf('"body":') + 7, line.lastIndexOf('},"error":'));
        assert.equal(records.get(parsed.id)?.bodies.response_sha256, createHash('sha256').update(bodyText).digest('hex'));
      }
    } finally {
      upstream.always(undefined);
    }
  });

  it('lanegate batches – list and show read the running gateway\'s journal; cancel points to the API', async () => {
    const file = await uploadBatchInput(client, chatLines(2, 'gpt-fake', 'cli '));
    const batch = await waitForBatch(client, (await client.batches.create({ input_file_id: file.id, endpoint: '/v1/chat/completions', completion_window: '24h' })).id);
    const shown = await runCli(['batches', 'show', batch.id, '--config', gw.configFile]);
    assert.equal(shown.code, 0, shown.stderr);
    const parsed = JSON.parse(shown.stdout) as { status: string; request_counts: { completed: number } };
    assert.equal(parsed.status, 'completed');
    assert.equal(parsed.request_counts.completed, 2);
    const listed = await runCli(['batches', 'list', '--team', 'team-alpha', '--config', gw.configFile]);
    assert.equal(listed.code, 0, listed.stderr);
    assert.ok(listed.stdout.split('\n').filter(Boolean).some((l) => (JSON.parse(l) as { id: string }).id === batch.id));
    const missing = await runCli(['batches', 'show', 'batch_nope', '--config', gw.configFile]);
    assert.equal(missing.code, 1);
    const cancel = await runCli(['batches', 'cancel', batch.id, '--config', gw.configFile]);
    assert.equal(cancel.code, 2);
    assert.match(cancel.stderr, /POST \/v1\/batches\/\{id\}\/cancel/);
  });

  it('batches – /v1/embeddings and /v1/responses lines answer in their own API\'s shape', async () => {
    const embed = await uploadBatchInput(client, [{ custom_id: 'e1', method: 'POST', url: '/v1/embeddings', body: { model: 'embed-fake', input: 'batch embedding' } }]);
    const responses = await uploadBatchInput(client, [{ custom_id: 'r1', method: 'POST', url: '/v1/responses', body: { model: 'gpt-fake', input: 'batch response' } }]);
    const e = await waitForBatch(client, (await client.batches.create({ input_file_id: embed.id, endpoint: '/v1/embeddings', completion_window: '24h' })).id);
    const r = await waitForBatch(client, (await client.batches.create({ input_file_id: responses.id, endpoint: '/v1/responses', completion_window: '24h' })).id);
    assert.equal(e.status, 'completed');
    assert.equal(r.status, 'completed');
    const [eLine] = await outputLines(client, e.output_file_id!);
    assert.equal((eLine!.response!.body as { object: string }).object, 'list');
    const [rLine] = await outputLines(client, r.output_file_id!);
    const body = rLine!.response!.body as { object: string; status: string; output: Array<{ content: Array<{ text: string }> }> };
    assert.equal(body.object, 'response');
    assert.equal(body.output[0]!.content[0]!.text, 'Hello from fake-openai: batch response');
    // A line whose url is not the batch's endpoint fails the batch at validation, naming the line.
    const mixed = await uploadBatchInput(client, [{ custom_id: 'm1', method: 'POST', url: '/v1/embeddings', body: { model: 'embed-fake', input: 'x' } }]);
    const failed = await client.batches.create({ input_file_id: mixed.id, endpoint: '/v1/chat/completions', completion_window: '24h' });
    assert.equal(failed.status, 'failed');
    assert.equal(failed.errors?.data?.[0]?.line, 1);
  });

  it('batches – a line with an unknown model goes to the error file, the rest to the output', async () => {
    const input = chatLines(5, 'gpt-fake', 'unknown ');
    input[2]!.body.model = 'no-such-model';
    const file = await uploadBatchInput(client, input);
    const batch = await waitForBatch(client, (await client.batches.create({ input_file_id: file.id, endpoint: '/v1/chat/completions', completion_window: '24h' })).id);
    assert.equal(batch.status, 'completed');
    assert.deepEqual(batch.request_counts, { total: 5, completed: 4, failed: 1 });
    const ok = await outputLines(client, batch.output_file_id!);
    const failed = await outputLines(client, batch.error_file_id!);
    assert.deepEqual(ok.map((l) => l.custom_id).sort(), ['line-0', 'line-1', 'line-3', 'line-4']);
    assert.equal(failed.length, 1);
    assert.equal(failed[0]!.custom_id, 'line-2');
    assert.equal(failed[0]!.response?.status_code, 404);
    assert.equal((failed[0]!.response?.body as { error: { code: string } }).error.code, 'model_not_found');
  });

  it('batches – POST /v1/batches reads its body within the server\'s limits: oversize is 413, bad JSON 400, nothing queued', async () => {
    const headers = { authorization: `Bearer ${APP_KEY}`, 'content-type': 'application/json' };
    const before = (await client.batches.list()).data.length;
    const huge = JSON.stringify({ input_file_id: 'file-x', endpoint: '/v1/chat/completions', completion_window: '24h', metadata: { pad: 'x'.repeat(9 * 1024 * 1024) } });
    const oversize = await fetch(`${gw.url}/v1/batches`, { method: 'POST', headers, body: huge }).catch((err: unknown) => err);
    // The server answers 413 and may close the connection while the rest still arrives.
    if (oversize instanceof Response) {
      assert.equal(oversize.status, 413);
      assert.equal(((await oversize.json()) as { error: { type: string } }).error.type, 'invalid_request_error');
    }
    const bad = await fetch(`${gw.url}/v1/batches`, { method: 'POST', headers, body: '{"input_file_id":' });
    assert.equal(bad.status, 400);
    assert.ok(((await bad.json()) as { error: { message: string } }).error.message.length > 0);
    assert.equal((await client.batches.list()).data.length, before);
  });

  it('batches – another team\'s key cannot read, list or cancel the batch', async () => {
    const file = await uploadBatchInput(client, chatLines(1, 'gpt-fake', 'team '));
    const batch = await client.batches.create({ input_file_id: file.id, endpoint: '/v1/chat/completions', completion_window: '24h' });
    const other = gw.client(OTHER_KEY);
    await assert.rejects(other.batches.retrieve(batch.id), (err: { status?: number }) => err.status === 404);
    await assert.rejects(other.batches.cancel(batch.id), (err: { status?: number }) => err.status === 404);
    const listed = await other.batches.list();
    assert.ok(!listed.data.some((b) => b.id === batch.id));
    // Nor can it start a batch from this team's file.
    await assert.rejects(other.batches.create({ input_file_id: file.id, endpoint: '/v1/chat/completions', completion_window: '24h' }), (err: { status?: number }) => err.status === 404);
    const done = await waitForBatch(client, batch.id);
    assert.ok((await client.batches.list()).data.some((b) => b.id === batch.id));
    // Nor its output file.
    await assert.rejects(other.files.content(done.output_file_id!), (err: { status?: number }) => err.status === 404);
    await assert.rejects(other.files.retrieve(done.output_file_id!), (err: { status?: number }) => err.status === 404);
  });

  it('batches – cancel mid-batch: lines not yet run are never sent upstream', async () => {
    upstream.always({ delayMs: 150 });
    try {
      const calls = upstream.calls.length;
      const file = await uploadBatchInput(client, chatLines(40, 'gpt-fake', 'cancel '));
      const created = await client.batches.create({ input_file_id: file.id, endpoint: '/v1/chat/completions', completion_window: '24h' });
      while ((await client.batches.retrieve(created.id)).request_counts!.completed < 1) await new Promise((r) => setTimeout(r, 20));
      const cancelling = await client.batches.cancel(created.id);
      assert.ok(cancelling.status === 'cancelling' || cancelling.status === 'cancelled');
      const batch = await waitForBatch(client, created.id);
      assert.equal(batch.status, 'cancelled');
      const answered = batch.request_counts!.completed + batch.request_counts!.failed;
      assert.ok(answered >= 1 && answered < 40, `some lines answered, not all (${answered})`);
      assert.equal(upstream.calls.length - calls, answered, 'only the lines answered reached the upstream');
      assert.equal((await outputLines(client, batch.output_file_id!)).length, batch.request_counts!.completed);
    } finally {
      upstream.always(undefined);
    }
  });

  it('batches – a budget that runs out mid-batch fails the rest with budget_exceeded, no overspend', async () => {
    const beta = gw.client(OTHER_KEY);
    const calls = upstream.calls.length;
    const file = await uploadBatchInput(beta, chatLines(12, 'fast', 'budget '));
    const batch = await waitForBatch(beta, (await beta.batches.create({ input_file_id: file.id, endpoint: '/v1/chat/completions', completion_window: '24h' })).id);
    assert.equal(batch.status, 'completed');
    assert.deepEqual(batch.request_counts, { total: 12, completed: 5, failed: 7 });
    const failed = await outputLines(beta, batch.error_file_id!);
    assert.equal(failed.length, 7);
    for (const l of failed) assert.equal((l.response?.body as { error: { code: string } }).error.code, 'budget_exceeded');
    assert.equal(upstream.calls.length, calls, 'the mock model answered; the fake upstream saw nothing');
  });
});
