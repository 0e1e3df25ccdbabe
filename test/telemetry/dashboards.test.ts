// The shipped Grafana dashboards against a real gateway's /metrics: every
// query parses and reads only metrics (and labels) the gateway exports, so a
// renamed metric cannot leave a panel silently empty; counters whose label
// values the config names exist at 0 before their first event, so the
// panels' increase() sees that event; process metrics carry the standard
// names the common Node.js dashboards query.
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import OpenAI from 'openai';
import { APP_KEY, startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { AUDIT_POLICIES, auditTestConfig } from '../audit/fixtures.js';
import { parsePrometheus, type Family, type Sample } from './prometheus.js';
import { parsePromQL, parseVariableQuery, selectors, type Matcher, type Node } from './promql.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const DASHBOARDS = ['dashboards/lanegate-finance.json', 'dashboards/lanegate-sre.json'];

const LIMITS = `
budgets:
  rules:
    - { name: alpha-daily-requests, scope: team, match: [team-alpha], period: day, requests: 1 }
    - { name: beta-monthly, scope: key, match: [beta], period: month, usd: 50 }
rate_limits:
  - { name: beta-rpm, scope: key, match: [beta], requests_per_minute: 100 }
`;

interface Panel {
  title?: string;
  panels?: Panel[];
  targets?: Array<{ expr?: string; refId?: string }>;
}

interface Dashboard {
  title: string;
  panels: Panel[];
  templating?: { list: Array<{ name: string; type: string; query?: string | { query: string } }> };
}

async function loadDashboard(file: string): Promise<Dashboard> {
  return JSON.parse(await readFile(path.join(ROOT, file), 'utf8')) as Dashboard;
}

function* panelsOf(panels: Panel[]): Generator<Panel> {
  for (const p of panels) {
    yield p;
    if (p.panels) yield* panelsOf(p.panels);
  }
}

/** Grafana substitutes template variables into matcher strings; for evaluation "All" is what a user sees first. */
function matches(sample: Sample, m: Matcher): boolean {
  const value = m.label === '__name__' ? sample.name : (sample.labels[m.label] ?? '');
  const pattern = () => new RegExp(`^(?:${m.value.replace(/\$\{?\w+\}?/g, '.*')})$`);
  switch (m.op) {
    case '=':
      return value === m.value;
    case '!=':
      return value !== m.value;
    case '=~':
      return pattern().test(value);
    case '!~':
      return !pattern().test(value);
  }
}

function seriesOf(families: Map<string, Family>, node: Extract<Node, { type: 'selector' }>): Sample[] {
  const out: Sample[] = [];
  for (const f of families.values()) for (const s of f.samples) if (s.name === node.name && node.matchers.every((m) => matches(s, m))) out.push(s);
  return out;
}

const seriesKey = (s: Sample) => JSON.stringify(Object.entries(s.labels).sort());

/**
 * `sum [by (labels)] (increase(selector[range]))` over a range holding two
 * scrapes, as Prometheus computes it: a series needs a sample at both ends of
 * the range to have an increase, so one born at its first event has none.
 * Returns the result's series (group -> value); no series is "No data".
 */
function evaluateIncrease(query: string, first: Map<string, Family>, last: Map<string, Family>): Map<string, number> {
  const node = parsePromQL(query);
  assert.equal(node.type, 'aggregation', query);
  assert.equal(node.op, 'sum', query);
  const inner = node.expr;
  assert.ok(inner.type === 'call' && inner.func === 'increase', query);
  const sel = inner.args[0]!;
  assert.ok(sel.type === 'selector' && sel.range !== undefined, query);
  const before = new Map(seriesOf(first, sel).map((s) => [seriesKey(s), s.value]));
  const by = node.grouping && !node.grouping.without ? node.grouping.labels : [];
  const out = new Map<string, number>();
  for (const s of seriesOf(last, sel)) {
    const start = before.get(seriesKey(s));
    if (start === undefined) continue;
    const group = JSON.stringify(by.map((l) => s.labels[l] ?? ''));
    out.set(group, (out.get(group) ?? 0) + (s.value - start));
  }
  return out;
}

function panelQuery(dashboard: Dashboard, title: string): string {
  const panel = [...panelsOf(dashboard.panels)].find((p) => p.title === title);
  assert.ok(panel, `${dashboard.title} has a panel "${title}"`);
  const expr = panel.targets?.[0]?.expr;
  assert.ok(expr, `panel "${title}" has a query`);
  return expr;
}

async function scrape(gw: TestGateway): Promise<Map<string, Family>> {
  const res = await fetch(`${gw.url}/metrics`);
  assert.equal(res.status, 200);
  return parsePrometheus(await res.text());
}

describe('dashboards and /metrics', () => {
  let gw: TestGateway;
  let first: Map<string, Family>;

  before(async () => {
    gw = await startTestGateway({ yaml: auditTestConfig({ extra: LIMITS }), files: { 'policies/lanes.yaml': AUDIT_POLICIES } });
    first = await scrape(gw);
  });
  after(() => gw.close());

  it('dashboards – every query parses and names only metrics and labels the gateway exports', async () => {
    // The registry's own metadata, so a metric not yet observed still counts as exported.
    const exported = new Map<string, Set<string>>();
    for (const m of await gw.gateway.metrics.registry.getMetricsAsJSON()) {
      const metric = gw.gateway.metrics.registry.getSingleMetric(m.name) as unknown as { labelNames?: readonly string[] } | undefined;
      const labels = new Set(metric?.labelNames ?? []);
      for (const s of m.values) for (const l of Object.keys(s.labels)) labels.add(l);
      const type = String(m.type);
      if (type === 'histogram') {
        exported.set(`${m.name}_bucket`, new Set([...labels, 'le']));
        exported.set(`${m.name}_sum`, labels);
        exported.set(`${m.name}_count`, labels);
      } else if (type === 'summary') {
        exported.set(m.name, new Set([...labels, 'quantile']));
        exported.set(`${m.name}_sum`, labels);
        exported.set(`${m.name}_count`, labels);
      } else exported.set(m.name, labels);
    }
    // And what a scraper sees, which must agree with the registry.
    for (const f of first.values()) for (const s of f.samples) assert.ok(exported.has(s.name), `${s.name} is in /metrics but not in the registry's list`);

    let checked = 0;
    for (const file of DASHBOARDS) {
      const dashboard = await loadDashboard(file);
      const queries: Array<{ where: string; node: Node | undefined }> = [];
      for (const panel of panelsOf(dashboard.panels)) {
        for (const t of panel.targets ?? []) {
          const where = `${file}: panel "${panel.title}" (${t.refId ?? '?'})`;
          assert.ok(t.expr, `${where} has no query`);
          let node: Node;
          try {
            node = parsePromQL(t.expr);
          } catch (err) {
            assert.fail(`${where}: ${(err as Error).message}`);
          }
          queries.push({ where, node });
        }
      }
      for (const v of dashboard.templating?.list ?? []) {
        if (v.type !== 'query' || v.query === undefined) continue;
        const text = typeof v.query === 'string' ? v.query : v.query.query;
        queries.push({ where: `${file}: variable $${v.name}`, node: parseVariableQuery(text) });
      }
      assert.ok(queries.length > 10, `${file} has its panels`);
      for (const { where, node } of queries) {
        if (!node) continue;
        for (const sel of selectors(node)) {
          assert.ok(sel.name, `${where}: selects by metric name`);
          const labels = exported.get(sel.name);
          assert.ok(labels, `${where}: ${sel.name} is not a metric the gateway exports`);
          for (const m of sel.matchers) assert.ok(labels.has(m.label), `${where}: ${sel.name} has no label "${m.label}"`);
          checked++;
        }
      }
    }
    assert.ok(checked > 40);
  });

  it('dashboards – the parser rejects what Prometheus would', () => {
    for (const bad of ['sum(rate(x[5m])', 'rate(x)', 'rat(x[5m])', 'sum by (a (x)', 'x{a=b}', 'x +', 'x{a="b"', 'x[5m'])
      assert.throws(() => parsePromQL(bad), SyntaxError, bad);
    assert.deepEqual(
      selectors(parsePromQL('histogram_quantile(0.99, sum by (le) (rate(a_bucket[5m]))) / on (x) group_left sum without (y) (b{c=~"d"}[5m:1m])')).map((s) => s.name),
      ['a_bucket', 'b'],
    );
  });

  it('metrics – process and Node.js metrics carry the standard names', () => {
    for (const name of ['process_resident_memory_bytes', 'process_cpu_seconds_total', 'nodejs_eventloop_lag_p99_seconds', 'nodejs_heap_size_used_bytes']) {
      assert.ok(first.has(name), `${name} is exported`);
    }
    const prefixed = [...first.keys()].filter((n) => n.startsWith('lanegate_process_'));
    assert.deepEqual(prefixed, []);
  });

  it('metrics – counters whose label values the config names exist at 0 before their first event', () => {
    const value = (name: string, labels: Record<string, string>) =>
      first.get(name)?.samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;
    assert.equal(value('lanegate_limit_refusals_total', { kind: 'budget', name: 'alpha-daily-requests' }), 0);
    assert.equal(value('lanegate_limit_refusals_total', { kind: 'budget', name: 'beta-monthly' }), 0);
    assert.equal(value('lanegate_limit_refusals_total', { kind: 'rate_limit', name: 'beta-rpm' }), 0);
    for (const reason of ['queue_full', 'spool_full', 'disk_full', 'sink_error', 'closed', 'crash']) assert.equal(value('lanegate_audit_dropped_total', { reason }), 0, reason);
    assert.equal(value('lanegate_audit_records_written_total', { sink: 'file' }), 0);
    assert.equal(value('lanegate_unpriced_requests_total', { deployment: 'mock/mock-fast' }), 0);
    assert.equal(value('lanegate_upstream_retries_total', { provider: 'fakeopenai', deployment: 'fakeopenai/gpt-4o-mini' }), 0);
    assert.equal(value('lanegate_cooldowns_total', { deployment: 'fakeopenai/gpt-4o-mini' }), 0);
    assert.equal(value('lanegate_fallbacks_total', { model: 'chain', provider: 'fakeopenai' }), 0);
    assert.equal(value('lanegate_policy_actions_total', { lane: 'amber', detector: 'email', action: 'redact' }), 0);
    assert.equal(value('lanegate_tool_calls_total', { lane: 'red', outcome: 'blocked', reason: 'denied' }), 0);
    assert.equal(value('lanegate_config_reloads_total', { result: 'error' }), 0);
    assert.equal(value('lanegate_cache_saved_usd_total', { route: 'fast', lane: 'green' }), 0);
  });

  it('dashboards – "Budget refusals" counts the first two refusals; "Audit records lost" shows 0, not "No data"', async () => {
    const finance = await loadDashboard('dashboards/lanegate-finance.json');
    const sre = await loadDashboard('dashboards/lanegate-sre.json');
    const client = new OpenAI({ apiKey: APP_KEY, baseURL: gw.baseURL, maxRetries: 0 });
    const ask = () => client.chat.completions.create({ model: 'fast', max_tokens: 1, messages: [{ role: 'user', content: 'x' }] });
    await ask();
    for (let i = 0; i < 2; i++) {
      await assert.rejects(ask(), (err: unknown) => err instanceof OpenAI.APIError && err.status === 429 && err.code === 'budget_exceeded');
    }
    await gw.gateway.audit.flush();
    const last = await scrape(gw);

    const refusals = evaluateIncrease(panelQuery(finance, 'Budget refusals, selected range'), first, last);
    assert.deepEqual([...refusals.values()], [2]);
    const lost = evaluateIncrease(panelQuery(sre, 'Audit records lost (must stay 0)'), first, last);
    assert.ok(lost.size > 0, '"Audit records lost" has series to show');
    assert.deepEqual(new Set(lost.values()), new Set([0]));
  });

  it('metrics – a reload creates the series of the budgets and models it adds', async () => {
    const yaml = (await readFile(gw.configFile, 'utf8'))
      .replace('    - { name: beta-monthly,', '    - { name: alpha-monthly, scope: team, match: [team-alpha], period: month, usd: 5 }\n    - { name: beta-monthly,')
      .replace('models:\n', 'models:\n  added-model: { deployments: [{ provider: mock, model: mock-added }] }\n');
    await writeFile(gw.configFile, yaml);
    const result = await gw.gateway.reload();
    assert.equal(result.ok, true, result.ok ? undefined : result.problems);
    const after = await scrape(gw);
    const value = (name: string, labels: Record<string, string>) =>
      after.get(name)?.samples.find((s) => Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;
    assert.equal(value('lanegate_limit_refusals_total', { kind: 'budget', name: 'alpha-monthly' }), 0);
    assert.equal(value('lanegate_unpriced_requests_total', { deployment: 'mock/mock-added' }), 0);
    assert.equal(value('lanegate_limit_refusals_total', { kind: 'budget', name: 'alpha-daily-requests' }), 2, 'existing series keep their counts');
  });
});
