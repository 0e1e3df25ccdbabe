// The console in a real headless Chromium against the real gateway: each
// role signs in and sees only its part; a held MCP call is approved (and
// runs, once, recorded) and another denied; the spend CSV is byte-equal to
// `lanegate costs`; a prompt is rolled back and the next request gets the
// previous version; changes without a session or its CSRF token are refused.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { hashKey } from '../../src/auth/keys.js';
import { attachToolGateway, callApprovalTool } from '../../src/mcp/govern.js';
import { launchBrowser, openContext, screenshot } from '../helpers/browser.js';
import { runCli } from '../helpers/cli.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { postChat } from '../helpers/routing.js';
import { countingExecutor, govern, keyOf, MCP_POLICIES, WITH_MCP_POLICIES } from '../mcp/fixtures.js';
import { promptConfig, SHIPPED } from '../prompts/fixtures.js';

const PEOPLE = {
  admin: { key: 'sk-person-ada-admin-000000000001', name: 'Ada' },
  approver: { key: 'sk-person-alice-approver-000002', name: 'Alice' },
  finance: { key: 'sk-person-fred-finance-00000003', name: 'Fred' },
  auditor: { key: 'sk-person-audrey-auditor-000004', name: 'Audrey' },
} as const;
type Role = keyof typeof PEOPLE;
const SIGN_INS_PER_MINUTE = 12;

const config = promptConfig({
  rest: `${WITH_MCP_POLICIES}
people:
${(Object.entries(PEOPLE) as Array<[Role, { key: string; name: string }]>).map(([role, p]) => `  - { name: ${p.name}, role: ${role}, sha256: ${hashKey(p.key)} }`).join('\n')}
console: { sign_in_per_minute: ${SIGN_INS_PER_MINUTE} }
`,
});

describe('console in a real browser', () => {
  let gw: TestGateway;
  let browser: Browser;
  const upstream = countingExecutor();
  const people = new Map<Role, { context: BrowserContext; page: Page; external: string[]; errors: string[] }>();

  before(async () => {
    // The triage prompt's tool joins the MCP tools in the lanes' catalogue.
    const policies = MCP_POLICIES.replace('tools:\n  files__read: {}', 'tools:\n  create_ticket: {}\n  files__read: {}');
    assert.notEqual(policies, MCP_POLICIES);
    gw = await startTestGateway({ yaml: config, files: { ...SHIPPED, 'policies/lanes.yaml': policies } });
    attachToolGateway(gw.gateway.services, { execute: upstream.execute });
    browser = await launchBrowser();
  });
  after(async () => {
    for (const p of people.values()) {
      assert.deepEqual(p.external, [], 'the console asks nothing of any other origin');
      // Chrome reports each 4xx page the tests ask for on purpose as a failed load; anything else (a CSP violation) fails.
      assert.deepEqual(p.errors.filter((e) => !/^Failed to load resource: the server responded with a status of 40[134]/.test(e)), [], 'no console errors');
    }
    await browser?.close();
    await gw?.close();
  });

  async function signIn(role: Role): Promise<Page> {
    const known = people.get(role);
    if (known) return known.page;
    const opened = await openContext(browser, gw.url);
    people.set(role, opened);
    const { page } = opened;
    await page.goto(`${gw.url}/console`);
    assert.equal(new URL(page.url()).pathname, '/console/sign-in');
    await page.getByLabel('Your console key').fill(PEOPLE[role].key);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL((u) => u.pathname !== '/console/sign-in');
    return page;
  }

  const navOf = async (page: Page) => (await page.getByRole('navigation', { name: 'Console pages' }).getByRole('link').allTextContents()).map((t) => t.trim());
  const statusOf = (r: CallToolResult) => (r.structuredContent as { status?: string } | undefined)?.status;

  it('sign-in – a wrong key is refused; the cookie is HttpOnly and SameSite=Strict; pages carry a strict CSP', async () => {
    const { page } = await openContext(browser, gw.url).then((o) => (people.set('admin', o), o));
    const res = await page.goto(`${gw.url}/console/sign-in`);
    assert.match(res!.headers()['content-security-policy']!, /default-src 'self'/);
    assert.doesNotMatch(res!.headers()['content-security-policy']!, /unsafe-inline/);
    await page.getByLabel('Your console key').fill('sk-not-a-console-key-000000');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByText('That key is not a console key').waitFor();
    await screenshot(page, 'console', 'sign-in-refused');
    // An app key is not a person's key either.
    await page.getByLabel('Your console key').fill('sk-test-app-alpha-0123456789');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByText('That key is not a console key').waitFor();
    people.delete('admin');
    const admin = await signIn('admin');
    const cookie = (await people.get('admin')!.context.cookies()).find((c) => c.name === 'lanegate_console')!;
    assert.equal(cookie.httpOnly, true);
    assert.equal(cookie.sameSite, 'Strict');
    assert.equal(cookie.secure, false, 'plain HTTP here; Secure behind TLS');
    assert.deepEqual(await navOf(admin), ['Approvals', 'Spend', 'Audit', 'Prompts', 'Health']);
    assert.ok(!gw.logs().includes(PEOPLE.admin.key), 'no key in the logs');
  });

  it('roles – each person sees only their pages and is refused the others', async () => {
    const expected: Record<Role, string[]> = {
      admin: ['Approvals', 'Spend', 'Audit', 'Prompts', 'Health'],
      approver: ['Approvals'],
      finance: ['Spend'],
      auditor: ['Approvals', 'Spend', 'Audit', 'Prompts', 'Health'],
    };
    for (const role of ['approver', 'finance', 'auditor'] as const) {
      const page = await signIn(role);
      assert.deepEqual(await navOf(page), expected[role], role);
      await screenshot(page, 'console', `home-${role}`);
      for (const path of ['approvals', 'spend', 'audit', 'prompts', 'health']) {
        if (expected[role].includes(path[0]!.toUpperCase() + path.slice(1))) continue;
        const res = await page.goto(`${gw.url}/console/${path}`);
        assert.equal(res!.status(), 403, `${role} is refused ${path}`);
        await page.getByText(`The ${role} role cannot see this page`).waitFor();
      }
    }
    // The approver reads no spend through the CSV either, and finance decides nothing.
    const approver = await signIn('approver');
    assert.equal((await approver.goto(`${gw.url}/console/spend.csv`))!.status(), 403);
    const finance = await signIn('finance');
    assert.equal((await finance.goto(`${gw.url}/console/approvals/rows`))!.status(), 403);
  });

  it('approvals – a held MCP call appears without a reload, is approved with a reason, runs once, and is recorded with who', async () => {
    const page = await signIn('approver');
    await page.goto(`${gw.url}/console/approvals`);
    await page.getByText('No held calls.').waitFor();
    // Held after the page loaded: the script's refresh brings it in.
    const held = await govern(gw.gateway, { name: 'mail__send', args: { to: 'team@example.com', subject: 'Release notes' }, runId: 'run-42' });
    assert.equal(held.kind, 'held');
    const id = held.kind === 'held' ? held.approvalId : '';
    const row = page.locator(`tr[data-id="${id}"]`);
    await row.waitFor();
    assert.equal(new URL(page.url()).pathname, '/console/approvals');
    const text = await row.innerText();
    for (const part of ['app-alpha', 'team-alpha', 'green', 'mail__send', 'team@example.com', 'tools.require_approval', 'run-42']) assert.ok(text.includes(part), `${part} in ${text}`);
    await screenshot(page, 'console', 'approvals');
    await row.getByLabel('Reason').fill('recipient checked');
    await row.getByRole('button', { name: 'Approve' }).click();
    await page.getByText(`Approved: ${id}`).waitFor();

    const before = upstream.calls.length;
    const result = await callApprovalTool({ services: gw.gateway.services, config: gw.gateway.config(), key: keyOf(gw.gateway, 'alpha'), args: { approval_id: id }, requestId: 'req_poll' });
    assert.notEqual(statusOf(result), 'pending');
    assert.equal(upstream.calls.length, before + 1, 'the approved call ran, once');
    assert.deepEqual(upstream.calls.at(-1), { server: 'mail', tool: 'send', args: { to: 'team@example.com', subject: 'Release notes' } });
    const records = await gw.auditRecords();
    const decision = records.find((r) => r.kind === 'approval_decision' && r.id === id)!;
    assert.deepEqual([decision.decision, decision.by, decision.by_role, decision.reason], ['approved', 'Alice', 'approver', 'recipient checked']);
    assert.deepEqual(records.filter((r) => r.kind === 'tool_call' && r.approval_id === id).map((r) => r.decision).sort(), ['executed', 'held']);
  });

  it('approvals – a denied call never runs; the auditor sees it but has no buttons', async () => {
    const held = await govern(gw.gateway, { name: 'mail__send', args: { to: 'all@example.com', subject: 'Oops' }, runId: 'run-43' });
    const id = held.kind === 'held' ? held.approvalId : '';
    const page = await signIn('approver');
    await page.goto(`${gw.url}/console/approvals`);
    const row = page.locator(`tr[data-id="${id}"]`);
    await row.getByLabel('Reason').fill('wrong list');
    await row.getByRole('button', { name: 'Deny' }).click();
    await page.getByText(`Denied: ${id}`).waitFor();
    const before = upstream.calls.length;
    const result = await callApprovalTool({ services: gw.gateway.services, config: gw.gateway.config(), key: keyOf(gw.gateway, 'alpha'), args: { approval_id: id }, requestId: 'req_poll2' });
    assert.equal(statusOf(result), 'rejected');
    assert.equal(upstream.calls.length, before);
    const decision = (await gw.auditRecords()).find((r) => r.kind === 'approval_decision' && r.id === id)!;
    assert.deepEqual([decision.decision, decision.by, decision.by_role], ['rejected', 'Alice', 'approver']);

    const auditor = await signIn('auditor');
    await auditor.goto(`${gw.url}/console/approvals?status=all`);
    await auditor.locator(`tr[data-id="${id}"]`).getByText('rejected by Alice: wrong list').waitFor();
    assert.equal(await auditor.getByRole('button', { name: 'Approve' }).count(), 0);
  });

  it('spend – the chart and table, and a CSV export byte-equal to `lanegate costs --csv` for the same range', async () => {
    for (const model of ['fast', 'fast', 'smart']) {
      const res = await postChat(gw, { model, messages: [{ role: 'user', content: 'spend something' }] });
      assert.equal(res.status, 200);
      await res.arrayBuffer();
    }
    await gw.gateway.audit.flush();
    const today = new Date().toISOString().slice(0, 10);
    const page = await signIn('finance');
    await page.goto(`${gw.url}/console/spend?from=${today}&to=${today}&by=model`);
    await page.getByRole('img', { name: 'Spend in USD by model' }).waitFor();
    await page.getByRole('table', { name: 'Spend by model' }).getByRole('cell', { name: 'fast', exact: true }).waitFor();
    await screenshot(page, 'console', 'spend');
    const download = page.waitForEvent('download');
    await page.getByRole('link', { name: 'Export CSV' }).click();
    const csv = await readFile((await (await download).path())!, 'utf8');
    const cli = await runCli(['costs', '--from', today, '--to', today, '--by', 'model', '--csv', '--config', gw.configFile]);
    assert.equal(cli.code, 0, cli.stderr);
    assert.match(csv, /^fast,/m);
    assert.equal(csv, cli.stdout);
  });

  it('prompts – roll back through the confirmation page; the next request gets the previous version, and the rollback is recorded', async () => {
    const served = async () => {
      const res = await postChat(gw, { model: 'prompt:triage', messages: [], variables: { ticket: 'Which version?' } });
      assert.equal(res.status, 200);
      await res.arrayBuffer();
      return res.headers.get('x-gateway-prompt-version');
    };
    assert.equal(await served(), 'triage@v2');
    const page = await signIn('admin');
    await page.goto(`${gw.url}/console/prompts`);
    await screenshot(page, 'console', 'prompts');
    await page.getByRole('link', { name: 'Roll back to v1…' }).click();
    await page.getByRole('heading', { name: 'Roll back triage?' }).waitFor();
    await screenshot(page, 'console', 'prompts-confirm-rollback');
    assert.equal(await served(), 'triage@v2', 'nothing changes before the confirmation');
    await page.getByLabel('Note (why)').fill('v2 misroutes billing tickets');
    await page.getByRole('button', { name: 'Roll back to v1' }).click();
    await page.getByText('Rolled back triage; recorded in the audit trail.').waitFor();
    assert.equal(await page.locator('dd.pinned').first().innerText(), 'v1');
    assert.equal(await served(), 'triage@v1');
    const record = (await gw.auditRecords()).find((r) => r.kind === 'prompt_rollback')!;
    assert.deepEqual([record.from, record.to, record.by, record.by_role, record.note], ['v2', 'v1', 'Ada', 'admin', 'v2 misroutes billing tickets']);
    // The auditor reads prompts but has nothing to press.
    const auditor = await signIn('auditor');
    await auditor.goto(`${gw.url}/console/prompts`);
    assert.equal(await auditor.getByRole('link', { name: /Roll back|Promote/ }).count(), 0);
  });

  it('audit – search with filters, a record in full, and verify (recorded with who)', async () => {
    const page = await signIn('auditor');
    await page.goto(`${gw.url}/console/audit`);
    await page.getByLabel('Kind').fill('approval_decision');
    await page.getByRole('button', { name: 'Search' }).click();
    await page.waitForURL(/kind=approval_decision/);
    const links = page.getByRole('table', { name: 'Records, newest first' }).getByRole('link');
    assert.equal(await links.count(), 2);
    await screenshot(page, 'console', 'audit');
    await links.first().click();
    await page.getByRole('heading', { name: 'Whole record' }).waitFor();
    assert.match(await page.locator('dd.integrity').innerText(), /ok/);
    await screenshot(page, 'console', 'audit-record');
    await page.goto(`${gw.url}/console/audit`);
    await page.getByRole('button', { name: 'Verify every chain' }).click();
    await page.getByText('Every chain is intact').waitFor();
    await screenshot(page, 'console', 'audit-verify');
    const record = await (async () => {
      await gw.gateway.audit.flush();
      return (await gw.auditRecords()).find((r) => r.kind === 'audit_verify')!;
    })();
    assert.deepEqual([record.by, record.by_role, record.ok], ['Audrey', 'auditor', true]);
  });

  it('health – deployments, admission gates and the config reload (the rollback reloaded it)', async () => {
    const page = await signIn('admin');
    await page.goto(`${gw.url}/console/health`);
    await page.getByRole('table', { name: 'Deployments (seen since start)' }).getByText('mock/mock-fast').waitFor();
    await page.getByRole('table', { name: 'Admission gates' }).getByText('global').waitFor();
    assert.match(await page.locator('dl.facts').innerText(), /Last reload\s+\S+: ok/);
    await screenshot(page, 'console', 'health');
  });

  it('csrf – a change without a session, or without its CSRF token, is refused and changes nothing', async () => {
    const held = await govern(gw.gateway, { name: 'mail__send', args: { to: 'x@example.com', subject: 'CSRF' } });
    const id = held.kind === 'held' ? held.approvalId : '';
    const post = (headers: Record<string, string>, body: string) =>
      fetch(`${gw.url}/console/approvals/${id}/decide`, { method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers }, body });
    const cookie = (await people.get('approver')!.context.cookies()).find((c) => c.name === 'lanegate_console')!;
    const noSession = await post({}, 'decision=approve&reason=x');
    assert.equal(noSession.status, 401);
    const noToken = await post({ cookie: `lanegate_console=${cookie.value}` }, 'decision=approve&reason=x');
    assert.equal(noToken.status, 403);
    assert.match(await noToken.text(), /CSRF token does not match/);
    const wrongToken = await post({ cookie: `lanegate_console=${cookie.value}` }, `decision=approve&_csrf=${'A'.repeat(43)}`);
    assert.equal(wrongToken.status, 403);
    const forged = await post({ cookie: 'lanegate_console=' + 'B'.repeat(43) }, 'decision=approve');
    assert.equal(forged.status, 401);
    assert.equal((await gw.gateway.services.approvals.get(id))!.status, 'pending', 'nothing was decided');
    // Signing out ends the session on the server, not only in the browser.
    const page = await signIn('approver');
    await page.goto(`${gw.url}/console/approvals`);
    const token = await page.locator('input[name="_csrf"]').first().inputValue();
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.waitForURL(/\/console\/sign-in$/);
    const replay = await post({ cookie: `lanegate_console=${cookie.value}` }, `decision=approve&_csrf=${token}`);
    assert.equal(replay.status, 401);
    assert.equal((await gw.gateway.services.approvals.get(id))!.status, 'pending');
  });

  it('sign-in – attempts are limited per address, a right key included once over the limit', async () => {
    const attempt = (key: string) =>
      fetch(`${gw.url}/console/sign-in`, { method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `key=${key}` });
    let limited: Response | undefined;
    for (let i = 0; i <= SIGN_INS_PER_MINUTE && !limited; i++) {
      const res = await attempt(`sk-guess-${i}-0000000000000000`);
      await res.arrayBuffer();
      if (res.status === 429) limited = res;
      else assert.equal(res.status, 401);
    }
    assert.ok(limited, 'refused once over the limit');
    assert.equal(limited.headers.get('retry-after'), '60');
    assert.equal((await attempt(PEOPLE.admin.key)).status, 429);
  });
});
