import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { ShadowRunRecord } from '../../src/prompts/audit-events.js';
import { formatShadowReport, parseSince, shadowReport } from '../../src/prompts/shadow-report.js';
import { startFakeOpenAI, type FakeOpenAI } from '../helpers/fake-openai.js';
import { ADMIN_KEY, startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { metricValue, postChat, waitFor } from '../helpers/routing.js';
import { promptConfig, simpleTemplate } from './fixtures.js';

const SHADOW_DELAY_MS = 800;

const FILES = {
  'prompts/triage/v1.yaml': simpleTemplate({ prefix: 'v1' }),
  // The shadow version answers from an upstream that takes SHADOW_DELAY_MS.
  'prompts/triage/v2.yaml': simpleTemplate({ model: 'upstream', prefix: 'v2' }),
  // A shadow whose variables do not fit what apps send: its runs fail, live never notices.
  'prompts/strict/v1.yaml': simpleTemplate({ prefix: 'strict' }),
  'prompts/strict/v2.yaml': `model: fast
variables:
  ticket: { type: string, required: true, max_length: 3 }
messages:
  - role: user
    content: "strict2: {{ticket}}"
`,
  'prompts/pins.yaml': `triage:
  live: v1
  shadow: v2
  sample: 1
strict: { live: v1, shadow: { version: v2, sample: 1 } }
`,
  'evals/triage/v1.jsonl': [
    JSON.stringify({ eval_set: { threshold: 1, shadow_checks: [{ type: 'regex', pattern: '^Echo: v1:' }] } }),
    JSON.stringify({ id: 'known', variables: { ticket: 'known case' }, checks: [{ type: 'contains', value: 'known case' }] }),
  ].join('\n'),
};

async function shadowRecords(gw: TestGateway): Promise<ShadowRunRecord[]> {
  return (await gw.auditRecords()).filter((r) => r.kind === 'shadow_run') as unknown as ShadowRunRecord[];
}

describe('shadow runs', () => {
  let upstream: FakeOpenAI;
  let gw: TestGateway;
  before(async () => {
    upstream = await startFakeOpenAI();
    upstream.always({ delayMs: SHADOW_DELAY_MS });
    gw = await startTestGateway({ yaml: promptConfig({ upstreamUrl: upstream.url, prompts: '  shadow: { max_concurrent: 1, max_queue: 1 }\n' }), files: FILES });
  });
  after(async () => {
    await gw.close();
    await upstream.close();
  });

  it('never delays the live reply: the answer is in before the shadow completes, which runs after it and is recorded beside it', async () => {
    const res = await postChat(gw, { model: 'prompt:triage', messages: [], variables: { ticket: 'known case' } });
    const body = (await res.json()) as { choices: Array<{ message: { content: string } }> };
    // The whole live answer is here; the shadow's upstream alone takes SHADOW_DELAY_MS and starts after the reply.
    assert.equal(body.choices[0]!.message.content, 'Echo: v1: known case');
    assert.equal(res.headers.get('x-gateway-prompt-version'), 'triage@v1');
    const id = res.headers.get('x-request-id')!;
    assert.equal((await shadowRecords(gw)).length, 0, 'no shadow has completed when the live reply arrives');
    assert.equal(await metricValue(gw, 'lanegate_prompt_shadow_runs_total{prompt="triage",version="v2",outcome="ok"}'), undefined);

    const record = await waitFor('the shadow run record', async () => (await shadowRecords(gw)).find((r) => r.request_id === id), 5000);
    const live = (await gw.auditRecords()).find((r) => r.id === id && r.kind === 'request')!;
    assert.ok(live, 'the live request has its own record');
    assert.equal(record.id, `${id}/shadow`);
    assert.equal(record.prompt, 'triage');
    assert.equal(record.model, 'prompt:triage');
    assert.equal(record.key_id, 'alpha');
    assert.equal(record.bodies, 'full');
    assert.equal(record.live.version, 'v1');
    assert.equal(record.shadow.version, 'v2');
    assert.equal(record.live.output!.content, 'Echo: v1: known case');
    assert.equal(record.shadow.deployment, 'up/gpt-4o-mini');
    assert.equal(record.shadow.status, 200);
    assert.ok(record.shadow.latency_ms! >= SHADOW_DELAY_MS, `shadow took ${record.shadow.latency_ms} ms`);
    assert.ok(record.live.latency_ms! < record.shadow.latency_ms!);
    assert.ok(record.shadow.usage!.total_tokens > 0);
    assert.equal(record.agreement, false);
    // The eval set's checks where they fit: its shadow checks, and the case whose variables match.
    assert.deepEqual(record.checks_from, { set: 'triage@v1', case: 'known' });
    assert.deepEqual(
      record.live.checks.map((c) => c.pass),
      [true, true],
    );
    assert.deepEqual(
      record.shadow.checks.map((c) => [c.type, c.pass]),
      [
        ['regex', false],
        ['contains', true],
      ],
    );
    // The shadow upstream saw the shadow version, under its own identity; the app never did.
    const call = upstream.calls.at(-1)!;
    assert.equal((call.body.messages as Array<{ content: string }>).at(-1)!.content, 'v2: known case');
  });

  it('a stream\'s shadow runs too, once the stream has ended', async () => {
    const res = await postChat(gw, { model: 'prompt:triage', messages: [], stream: true, variables: { ticket: 'streamed' } });
    const text = await res.text();
    assert.match(text, /data: \[DONE\]/);
    const id = res.headers.get('x-request-id')!;
    const record = await waitFor('the stream\'s shadow record', async () => (await shadowRecords(gw)).find((r) => r.request_id === id), 5000);
    assert.equal(record.live.output!.content, 'Echo: v1: streamed');
    assert.equal(record.shadow.status, 200);
  });

  it('the queue is bounded: runs beyond max_concurrent + max_queue are dropped and counted, never piled up', async () => {
    const dropped = (await metricValue(gw, 'lanegate_prompt_shadow_runs_total{prompt="triage",version="v2",outcome="dropped"}')) ?? 0;
    for (let i = 0; i < 5; i++) {
      const res = await postChat(gw, { model: 'prompt:triage', messages: [], variables: { ticket: `burst ${i}` } });
      assert.equal(res.status, 200);
      await res.arrayBuffer();
    }
    const after = await waitFor('dropped shadow runs', async () => {
      const v = (await metricValue(gw, 'lanegate_prompt_shadow_runs_total{prompt="triage",version="v2",outcome="dropped"}')) ?? 0;
      return v >= dropped + 2 ? v : undefined;
    });
    assert.ok(after >= dropped + 2);
  });

  it('a failing shadow is recorded as such and never touches the live answer', async () => {
    await waitFor('the queue to empty', async () => ((await metricValue(gw, 'lanegate_prompt_shadow_pending')) === 0 ? true : undefined), 5000);
    const res = await postChat(gw, { model: 'prompt:strict', messages: [], variables: { ticket: 'too long for v2' } });
    assert.equal(res.status, 200);
    const id = res.headers.get('x-request-id')!;
    const record = await waitFor('the failed shadow record', async () => (await shadowRecords(gw)).find((r) => r.request_id === id), 5000);
    assert.equal(record.shadow.status, 400);
    assert.equal(record.shadow.error_code, 'invalid_request');
    assert.equal(record.shadow.output, null);
    assert.equal(record.agreement, null);
    assert.equal(record.live.output!.content, 'Echo: strict: too long for v2');
  });

  it('shadow-report – summarises agreement, checks, tokens, cost and latency of shadow against live', async () => {
    await waitFor('shadow runs to settle', async () => ((await metricValue(gw, 'lanegate_prompt_shadow_pending')) === 0 ? true : undefined), 5000);
    const dir = path.join(gw.dir, 'audit');
    const [summary, ...others] = await shadowReport(dir, 'triage', parseSince('1d'));
    assert.equal(others.length, 0);
    assert.equal(summary!.live_version, 'v1');
    assert.equal(summary!.shadow_version, 'v2');
    assert.ok(summary!.runs >= 3);
    assert.equal(summary!.agreement_rate, 0);
    assert.equal(summary!.live.checks_pass_rate, 1);
    assert.equal(summary!.shadow.checks_pass_rate, 0);
    assert.ok(summary!.shadow.latency_ms.p50! >= SHADOW_DELAY_MS);
    assert.ok(summary!.live.latency_ms.p50! < SHADOW_DELAY_MS);
    assert.ok(summary!.live.cost_usd > 0, 'live is priced (mock-fast has a price)');
    assert.match(formatShadowReport('triage', parseSince('1d'), [summary!]), /live v1 vs shadow v2/);
    assert.deepEqual(await shadowReport(dir, 'triage', Date.now() + 60_000), []);
  });

  it('a shadow call is a request record of key, app and team shadow:<live one\'s>, and /admin/usage counts it apart', async () => {
    const res = await postChat(gw, { model: 'prompt:triage', messages: [], variables: { ticket: 'what does it cost' } });
    await res.text();
    const id = res.headers.get('x-request-id')!;
    const record = await waitFor('the shadow request record', async () => (await gw.auditRecords()).find((r) => r.id === `${id}/shadow` && r.kind === 'request'), 5000);
    assert.equal(record.key_id, 'shadow:alpha');
    assert.equal(record.app, 'shadow:app-alpha');
    assert.equal(record.team, 'shadow:team-alpha');
    const cost = record.cost as { nano_usd: number } | null;
    assert.ok(cost && cost.nano_usd > 0, JSON.stringify(record.cost));
    const usage = await fetch(`${gw.url}/admin/usage?group_by=app`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } });
    const rows = ((await usage.json()) as { data: Array<{ group: string; requests: number; nano_usd: number }> }).data;
    const shadow = rows.find((r) => r.group === 'shadow:app-alpha');
    assert.ok(shadow && shadow.requests >= 1 && shadow.nano_usd >= cost.nano_usd, JSON.stringify(rows));
  });
});

describe('shadow runs under admission control', () => {
  it('a shadow run waits for a deployment slot at low priority, whatever priority its live request had: live requests queued after it go first', async () => {
    const upstream = await startFakeOpenAI();
    const gw = await startTestGateway({
      yaml: promptConfig({
        upstreamUrl: upstream.url,
        rest: 'admission: { queue_timeout_ms: 30000, deployments: { "up/gpt-4o-mini": { max_inflight: 1, max_queue: 5 } } }\n',
      }),
      files: FILES,
    });
    try {
      const queued = async () => metricValue(gw, 'lanegate_admission_queued{gate="up/gpt-4o-mini"}');
      const said = (text: string) => ({ model: 'upstream', messages: [{ role: 'user', content: text }] });
      // One live request holds the shadow deployment's only slot.
      upstream.script({ delayMs: 1500 });
      const holder = postChat(gw, said('hold'));
      await waitFor('the holder upstream', () => (upstream.calls.length === 1 ? true : undefined), 10_000);
      // A high-priority live request answers from the mock; its shadow queues for the held deployment.
      const live = await postChat(gw, { model: 'prompt:triage', messages: [], variables: { ticket: 'known case' } }, { headers: { 'x-gateway-priority': 'high' } });
      assert.equal(live.status, 200);
      await waitFor('the shadow queued', async () => ((await queued()) === 1 ? true : undefined), 10_000);
      const after = postChat(gw, said('after'));
      await waitFor('the later live request queued', async () => ((await queued()) === 2 ? true : undefined), 10_000);

      assert.equal((await holder).status, 200);
      assert.equal((await after).status, 200);
      await waitFor('the shadow upstream', () => (upstream.calls.length === 3 ? true : undefined), 10_000);
      const order = upstream.calls.map((c) => String((c.body.messages as Array<{ content: string }>).at(-1)!.content));
      assert.deepEqual(order, ['hold', 'after', 'v2: known case'], 'the live request went before the shadow queued ahead of it');
    } finally {
      await gw.close();
      await upstream.close();
    }
  });
});
