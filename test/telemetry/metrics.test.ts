import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import { startFakeOpenAI, type FakeOpenAI } from '../helpers/fake-openai.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { AUDIT_POLICIES, auditTestConfig, postJson, readSse } from '../audit/fixtures.js';
import { parsePrometheus, sum, type Family } from './prometheus.js';

describe('metrics', () => {
  let upstream: FakeOpenAI;
  let gw: TestGateway;
  const ids: string[] = [];
  const MARKER = 'metrics-marker-kestrel';
  let families: Map<string, Family>;

  before(async () => {
    upstream = await startFakeOpenAI();
    gw = await startTestGateway({ yaml: auditTestConfig({ openaiUrl: upstream.url }), files: { 'policies/lanes.yaml': AUDIT_POLICIES } });
    const send = async (body: Record<string, unknown>, headers: Record<string, string> = {}) => {
      const res = await postJson(gw, body, headers);
      ids.push(res.headers.get('x-request-id')!);
      if (body.stream) await readSse(res);
      else await res.text();
      return res;
    };
    const msg = [{ role: 'user', content: `hello ${MARKER}` }];
    assert.equal((await send({ model: 'gpt-fake', messages: msg })).status, 200);
    assert.equal((await send({ model: 'gpt-fake', messages: msg, stream: true })).status, 200);
    assert.equal((await send({ model: 'chain', messages: msg })).status, 200);
    assert.equal((await send({ model: 'no-such-model', messages: msg })).status, 404);
    assert.equal((await send({ model: 'gpt-fake', messages: [{ role: 'user', content: 'sk-proj-AbCdEfGhIjKlMnOpQrStUv0123456789' }] })).status, 400);
    upstream.script({ status: 503 });
    assert.equal((await send({ model: 'gpt-fake', messages: msg })).status, 503);
    await gw.gateway.audit.flush();
    const res = await fetch(`${gw.url}/metrics`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /text\/plain/);
    families = parsePrometheus(await res.text());
  });
  after(async () => {
    await gw.close();
    await upstream.close();
  });

  it('metrics – requests and latency by route, model, provider, lane and status class', () => {
    const ok = { endpoint: 'chat', route: 'gpt-fake', model: 'gpt-fake', provider: 'fakeopenai', lane: 'green', status_class: '2xx' };
    assert.equal(sum(families, 'lanegate_requests_total', ok), 2);
    assert.equal(sum(families, 'lanegate_request_duration_seconds_count', ok), 2);
    // The unknown model and the blocked request (refused before routing).
    assert.equal(sum(families, 'lanegate_requests_total', { route: 'unknown', model: 'unknown', status_class: '4xx' }), 2, 'an unknown model is labelled "unknown", not with what the app sent');
    assert.equal(sum(families, 'lanegate_requests_total', { route: 'gpt-fake', status_class: '5xx' }), 1);
    const buckets = families.get('lanegate_request_duration_seconds')!.samples.filter((s) => s.name.endsWith('_bucket') && s.labels.route === 'gpt-fake' && s.labels.status_class === '2xx');
    for (let i = 1; i < buckets.length; i++) assert.ok(buckets[i]!.value >= buckets[i - 1]!.value, 'cumulative buckets');
    assert.equal(buckets.at(-1)!.labels.le, '+Inf');
    assert.equal(sum(families, 'lanegate_time_to_first_token_seconds_count', { route: 'gpt-fake', model: 'gpt-fake', provider: 'fakeopenai', lane: 'green' }), 1);
    assert.equal(families.get('lanegate_time_to_first_token_seconds')!.type, 'histogram');
  });

  it('metrics – upstream attempts, retries, fallbacks and attempt latency', () => {
    assert.ok(sum(families, 'lanegate_upstream_attempts_total', { provider: 'fakeopenai', outcome: 'ok' }) >= 3);
    assert.equal(sum(families, 'lanegate_upstream_attempts_total', { provider: 'refused', outcome: 'upstream_unavailable' }), 1);
    assert.equal(sum(families, 'lanegate_fallbacks_total', { model: 'chain', provider: 'fakeopenai' }), 1);
    assert.ok(sum(families, 'lanegate_upstream_attempt_duration_seconds_count', { deployment: 'fakeopenai/gpt-4o-mini' }) >= 3);
    assert.ok(families.has('lanegate_upstream_retries_total'));
    assert.ok(families.has('lanegate_breaker_state'));
  });

  it('metrics – tokens and USD by team, app, model and lane', () => {
    const who = { team: 'team-alpha', app: 'app-alpha', model: 'gpt-fake', lane: 'green' };
    assert.equal(sum(families, 'lanegate_tokens_total', { ...who, direction: 'input' }), 22, 'the plain and the streamed request');
    assert.ok(sum(families, 'lanegate_tokens_total', { ...who, direction: 'output' }) > 0);
    assert.ok(sum(families, 'lanegate_spend_usd_total', { team: 'team-alpha', app: 'app-alpha', model: 'gpt-fake', lane: 'green' }) > 0);
  });

  it('metrics – policy actions, audit health and config reloads are there', () => {
    assert.equal(sum(families, 'lanegate_policy_actions_total', { lane: 'green', detector: 'api_key', action: 'block' }), 1);
    assert.equal(sum(families, 'lanegate_audit_queue_depth'), 0);
    assert.equal(sum(families, 'lanegate_audit_spool_bytes'), 0);
    assert.equal(sum(families, 'lanegate_audit_dropped_total'), 0);
    assert.ok(sum(families, 'lanegate_audit_records_written_total', { sink: 'file' }) >= ids.length);
    assert.equal(sum(families, 'lanegate_audit_sink_up', { sink: 'file' }), 1);
    assert.equal(sum(families, 'lanegate_audit_refusing'), 0);
    assert.ok(families.has('lanegate_config_reloads_total'));
    assert.equal(sum(families, 'lanegate_requests_in_flight'), 0);
  });

  it('metrics – every family has help and a type; no label carries a request id or request text', () => {
    for (const f of families.values()) {
      if (!f.name.startsWith('lanegate_')) continue;
      assert.ok(f.help, `${f.name} has help`);
      assert.notEqual(f.type, 'untyped', `${f.name} has a type`);
      for (const s of f.samples) {
        for (const v of Object.values(s.labels)) {
          assert.ok(!ids.includes(v), `${s.name} has a request id as a label`);
          assert.ok(!v.includes(MARKER) && !v.includes('no-such-model'), `${s.name} has request text as a label: ${v}`);
          assert.ok(v.length <= 128, `${s.name}: a ${v.length}-character label value`);
        }
      }
    }
  });

  it('dashboards – both parse, and every metric their panels query is one the gateway exports', async () => {
    for (const name of ['lanegate-sre.json', 'lanegate-finance.json']) {
      const dashboard = JSON.parse(await readFile(`dashboards/${name}`, 'utf8')) as { panels: Array<{ targets?: Array<{ expr: string }> }>; templating: { list: Array<{ query?: unknown }> } };
      const queries = [...dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr)), ...dashboard.templating.list.map((v) => JSON.stringify(v.query ?? ''))];
      assert.ok(queries.length > 10, name);
      const used = new Set(queries.flatMap((q) => q.match(/lanegate_[a-z0-9_]+/g) ?? []).map((m) => m.replace(/_(bucket|sum|count)$/, '')));
      for (const metric of used) assert.ok(families.has(metric), `${name} queries ${metric}, which /metrics does not have`);
    }
  });
});
