// The cost report (`lanegate costs`, /admin/usage) and the metrics agree:
// both name the model that answered (not the route the app asked for), and
// a cache hit's tokens are saved, not used, in both.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startFakeOpenAI, type FakeOpenAI } from '../helpers/fake-openai.js';
import { ADMIN_KEY, startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { CACHE_POLICIES, cacheTestConfig, metricSum, storedEntry, waitFor } from '../cache/fixtures.js';

import { runCli } from '../helpers/cli.js';

interface Row {
  group: string;
  requests: number;
  input_tokens: number;
  output_tokens: number;
  saved_input_tokens: number;
  saved_output_tokens: number;
  nano_usd: number;
}

describe('costs and metrics agree', () => {
  let upstream: FakeOpenAI;
  let gw: TestGateway;
  let hitUsage = { prompt_tokens: 0, completion_tokens: 0 };

  before(async () => {
    upstream = await startFakeOpenAI();
    gw = await startTestGateway({ yaml: cacheTestConfig({ openaiUrl: upstream.url }), files: { 'policies/lanes.yaml': CACHE_POLICIES } });
    const client = gw.client();
    const ask = (content: string) => client.chat.completions.create({ model: 'cached-route', temperature: 0, messages: [{ role: 'user', content }] }).withResponse();
    await storedEntry(gw, () => ask('the same question'));
    const hit = await ask('the same question');
    assert.equal(hit.response.headers.get('x-gateway-cache'), 'hit');
    hitUsage = hit.data.usage!;
    await ask('another question');
    await waitFor('three records', async () => (await gw.auditRecords()).filter((r) => r.kind === 'request').length >= 3);
  });
  after(async () => {
    await gw?.close();
    await upstream?.close();
  });

  const metricTokens = async (direction: string) => metricSum(gw, 'lanegate_tokens_total', { direction, model: 'gpt-fake' });

  it('costs --by model – grouped by the model that answered, as lanegate_spend_usd_total labels it; cache hits saved, not used', async () => {
    const spend = await metricSum(gw, 'lanegate_spend_usd_total', { model: 'gpt-fake' });
    assert.ok(spend > 0);
    const out = await runCli(['costs', '--by', 'model', '--csv', '--config', gw.configFile]);
    assert.equal(out.code, 0, out.stderr);
    const [header, ...lines] = out.stdout.trim().split('\n');
    const cols = header!.split(',');
    const rows = lines.map((l) => Object.fromEntries(l.split(',').map((v, i) => [cols[i], v])));
    assert.deepEqual(rows.map((r) => r.model), ['gpt-fake', 'total'], out.stdout);
    const row = rows[0]!;
    assert.equal(Number(row.requests), 3);
    assert.equal(Number(row.input_tokens), await metricTokens('input'));
    assert.equal(Number(row.output_tokens), await metricTokens('output'));
    assert.equal(Number(row.saved_input_tokens), hitUsage.prompt_tokens);
    assert.equal(Number(row.saved_output_tokens), hitUsage.completion_tokens);
    assert.ok(Math.abs(Number(row.usd) - spend) < 1e-6, `${row.usd} vs ${spend}`);
  });

  it('/admin/usage?group_by=model – the same rows as the CLI', async () => {
    const res = await fetch(`${gw.url}/admin/usage?group_by=model`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } });
    const body = (await res.json()) as { data: Row[] };
    assert.deepEqual(body.data.map((r) => r.group), ['gpt-fake']);
    assert.equal(body.data[0]!.input_tokens, await metricTokens('input'));
    assert.equal(body.data[0]!.saved_input_tokens, hitUsage.prompt_tokens);
  });

  it('costs --by client – grouped by the user-agent family, as lanegate_client_requests_total labels it; /admin/usage agrees', async () => {
    const out = await runCli(['costs', '--by', 'client', '--csv', '--config', gw.configFile]);
    assert.equal(out.code, 0, out.stderr);
    const [header, ...lines] = out.stdout.trim().split('\n');
    const cols = header!.split(',');
    const rows = lines.map((l) => Object.fromEntries(l.split(',').map((v, i) => [cols[i], v])));
    // The openai SDK drove all three requests.
    assert.deepEqual(rows.map((r) => r.client), ['openai-node', 'total'], out.stdout);
    assert.equal(Number(rows[0]!.requests), 3);
    assert.equal(Number(rows[0]!.requests), await metricSum(gw, 'lanegate_client_requests_total', { client: 'openai-node' }));
    const res = await fetch(`${gw.url}/admin/usage?group_by=client`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } });
    const body = (await res.json()) as { data: Row[] };
    assert.deepEqual(body.data.map((r) => [r.group, r.requests]), [['openai-node', 3]]);
  });
});
