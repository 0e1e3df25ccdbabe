import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { compileCheck } from '../../src/evals/checks.js';
import { openInProcess, type InProcessGateway } from '../../src/evals/in-process.js';
import { compileJsonSchema } from '../../src/evals/json-schema.js';
import { parseVerdict, runEval } from '../../src/evals/run.js';
import { internalChatPipeline } from '../../src/pipeline/index.js';
import { promptConfig, SHIPPED, simpleTemplate } from './fixtures.js';

const ROOT = path.resolve(import.meta.dirname, '../..');

const line = (o: unknown) => JSON.stringify(o);

/** A set that exercises every check type against the mock (which echoes the last user message). */
const MIXED_SET = [
  line({ eval_set: { threshold: 0.5, judge_model: 'smart' } }),
  line({ id: 'exact', variables: { ticket: 'one' }, checks: [{ type: 'exact', value: 'Echo: T: one' }] }),
  line({ id: 'regex-not', variables: { ticket: 'two' }, checks: [{ type: 'regex', pattern: 'three', not: true }] }),
  line({ id: 'json', variables: { ticket: 'payload {"n": 2}' }, checks: [{ type: 'json_schema', schema: { type: 'object', required: ['n'], properties: { n: { type: 'integer', maximum: 1 } } } }] }),
  line({ id: 'tool', variables: { ticket: 'please call create_ticket now' }, checks: [{ type: 'tool_call', name: 'create_ticket', arguments: { input: 'T: please call create_ticket now' } }] }),
  line({ id: 'tool-wrong-args', variables: { ticket: 'call create_ticket' }, checks: [{ type: 'tool_call', name: 'create_ticket', arguments: { input: 'something else' } }] }),
  // The mock judge echoes the answer it grades, so the verdict a case's answer carries is the judge's.
  line({ id: 'judge-pass', variables: { ticket: 'VERDICT: PASS' }, checks: [{ type: 'judge', rubric: 'The answer repeats the ticket.' }] }),
  line({ id: 'judge-fail', variables: { ticket: 'VERDICT: FAIL' }, checks: [{ type: 'judge', rubric: 'The answer repeats the ticket.' }] }),
  line({ id: 'judge-mute', variables: { ticket: 'no verdict here' }, checks: [{ type: 'judge', rubric: 'x', model: 'fast' }] }),
  line({ id: 'bad-variables', variables: { nope: 1 }, checks: [{ type: 'contains', value: 'x' }] }),
].join('\n');

function runCli(args: string[], cwd: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [path.join(ROOT, 'bin/lanegate.mjs'), ...args], { cwd, timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

describe('eval gates', () => {
  let dir: string;
  let configFile: string;
  let gw: InProcessGateway;
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'lanegate-evals-'));
    const files: Record<string, string> = {
      ...SHIPPED,
      'prompts/mixed/v1.yaml': simpleTemplate({ prefix: 'T', extra: 'tools: [create_ticket@v1]\n' }),
      'evals/mixed/v1.jsonl': MIXED_SET,
    };
    for (const [name, text] of Object.entries(files)) {
      await mkdir(path.dirname(path.join(dir, name)), { recursive: true });
      await writeFile(path.join(dir, name), text);
    }
    configFile = path.join(dir, 'gateway.yaml');
    await writeFile(configFile, promptConfig().replaceAll('{{dir}}', dir));
    gw = await openInProcess(configFile, {});
  });
  after(async () => {
    await gw.close();
    await rm(dir, { recursive: true, force: true });
  });

  const run = (prompt: string, version: string, set: string) =>
    runEval({ config: gw.config, services: gw.services, stages: internalChatPipeline, prompt, version, set: gw.config.prompts.evals.get(prompt === 'mixed' ? 'mixed' : 'triage')!.get(set)! });

  it('gate – the shipped set passes against the mock for the live version', async () => {
    const report = await run('triage', 'v2', 'v1');
    assert.equal(report.summary.gate, 'pass', JSON.stringify(report.cases.filter((c) => !c.pass), null, 2));
    assert.equal(report.summary.cases, 12);
    assert.equal(report.summary.passed, 12);
    assert.equal(report.set, 'triage@v1');
    assert.equal(report.template_sha256, gw.config.prompts.templates.get('triage')!.get('v2')!.sha256);
    assert.ok(report.summary.tokens.total > 0);
    assert.ok(report.cases.every((c) => c.model === 'fast' && c.deployment === 'mock/mock-fast'));
  });

  it('gate – the same set fails for v1, whose template lacks the variables the cases send', async () => {
    const report = await run('triage', 'v1', 'v1');
    assert.equal(report.summary.gate, 'fail');
    assert.ok(report.summary.pass_rate < 0.9);
    const errored = report.cases.find((c) => c.id === 'double-charge')!;
    assert.equal(errored.error!.code, 'invalid_request');
    assert.match(errored.error!.message, /variables\.tier is not a variable of this template/);
  });

  it('checks – exact, regex, json_schema, tool_call and judge checks each pass and fail as they should', async () => {
    const report = await run('mixed', 'v1', 'v1');
    const by = Object.fromEntries(report.cases.map((c) => [c.id, c]));
    assert.equal(by.exact!.pass, true);
    assert.equal(by['regex-not']!.pass, true);
    assert.equal(by.json!.pass, false);
    assert.match(by.json!.checks[0]!.detail!, /\/n: above 1/);
    assert.equal(by.tool!.pass, true, JSON.stringify(by.tool));
    assert.equal(by['tool-wrong-args']!.pass, false);
    assert.match(by['tool-wrong-args']!.checks[0]!.detail!, /argument "input" is/);
    assert.equal(by['judge-pass']!.pass, true, JSON.stringify(by['judge-pass']));
    assert.equal(by['judge-fail']!.pass, false);
    assert.equal(by['judge-mute']!.pass, false);
    assert.match(by['judge-mute']!.checks[0]!.detail!, /gave no VERDICT line/);
    assert.equal(by['bad-variables']!.error!.code, 'invalid_request');
    assert.equal(report.summary.passed, 4);
    assert.equal(report.summary.errored, 1);
    assert.equal(report.summary.gate, 'fail');
  });

  it('cli – `lanegate eval` prints the table, writes the report and exits 0 on a pass, 1 below the threshold', async () => {
    const out = path.join(dir, 'report-pass.json');
    const pass = await runCli(['eval', 'triage', '--set', 'triage@v1', '--out', out, '--config', configFile], dir);
    assert.equal(pass.code, 0, pass.stderr);
    assert.match(pass.stdout, /triage@v2 on triage@v1 \(model fast\): 12\/12 passed \(100\.0%\).*gate PASS/);
    const bytes = await readFile(out);
    assert.match(pass.stdout, new RegExp(`sha256 ${createHash('sha256').update(bytes).digest('hex')}`));
    assert.equal(JSON.parse(bytes.toString()).summary.gate, 'pass');

    const fail = await runCli(['eval', 'triage@v1', '--config', configFile], dir);
    assert.equal(fail.code, 1, fail.stderr);
    assert.match(fail.stdout, /gate FAIL/);
    assert.match(fail.stdout, new RegExp(`report: ${dir.replaceAll('/', '\\/')}\\/reports\\/triage@v1--triage@v1--`));

    const unknown = await runCli(['eval', 'triage@v9', '--config', configFile], dir);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /triage has no version v9/);
  });

  it('cli – eval calls are request records of key, app and team _eval (in their own _eval chain), so `lanegate costs` counts them', async () => {
    const run = await runCli(['eval', 'triage', '--set', 'triage@v1', '--out', path.join(dir, 'report-costs.json'), '--config', configFile], dir);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stderr, /audit: 12 request records written to the _eval chain/);
    const costs = await runCli(['costs', '--by', 'app', '--csv', '--config', configFile], dir);
    assert.equal(costs.code, 0, costs.stderr);
    const row = costs.stdout.split('\n').find((l) => l.startsWith('_eval,'));
    assert.ok(row, costs.stdout);
    // This run's 12 cases, and those of the earlier runs in this file.
    assert.ok(Number(row.split(',')[1]) >= 12, row);
    const listed = await runCli(['audit', 'list', '--lane', '_eval', '--limit', '1000', '--config', configFile], dir);
    assert.equal(listed.code, 0, listed.stderr);
    const records = listed.stdout.trim().split('\n').map((l) => JSON.parse(l) as { kind: string; key_id: string; app: string; team: string });
    assert.ok(records.length >= 12);
    for (const r of records) assert.deepEqual([r.kind, r.key_id, r.app, r.team], ['request', '_eval', '_eval', '_eval']);
  });

  it('checks – the JSON schema subset validator and the verdict parser', () => {
    const validate = compileJsonSchema({
      type: 'object',
      properties: { queue: { enum: ['billing', 'technical'] }, tags: { type: 'array', items: { type: 'string', pattern: '^[a-z]+$' }, maxItems: 2 } },
      required: ['queue'],
      additionalProperties: false,
    });
    assert.deepEqual(validate({ queue: 'billing', tags: ['a'] }), []);
    assert.deepEqual(validate({ queue: 'x', tags: ['A', 'b', 'c'], more: 1 }), [
      '/queue: must be one of "billing", "technical"',
      '/tags: more than 2 items',
      '/tags/0: does not match "^[a-z]+$"',
      '/more: no value is allowed here',
    ]);
    assert.throws(() => compileJsonSchema({ if: {} }), /"if" is not supported/);
    const check = compileCheck({ type: 'json_schema', schema: { type: 'array' } });
    assert.ok(check.type !== 'judge' && check.run({ content: 'Sure:\n```json\n[1, 2]\n```', tool_calls: [] }).pass);
    assert.equal(parseVerdict('It repeats it. VERDICT: FAIL\nVERDICT: PASS'), 'pass');
    assert.equal(parseVerdict('verdict = "fail"'), 'fail');
    assert.equal(parseVerdict('no idea'), undefined);
  });
});
