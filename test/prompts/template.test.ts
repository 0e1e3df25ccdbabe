import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { renderMessages } from '../../src/prompts/render.js';
import { parseTemplate, renderSegments } from '../../src/prompts/template.js';
import { bindVariables, compileVariable } from '../../src/prompts/variables.js';
import { loadWith, SHIPPED, simpleTemplate } from './fixtures.js';

function render(text: string, values: Record<string, string | number | boolean | string[] | undefined>): string {
  const parsed = parseTemplate(text);
  assert.deepEqual(parsed.problems, []);
  return renderSegments(parsed.segments, values);
}

describe('template syntax', () => {
  it('render – substitutes variables and repeats sections per array item', () => {
    assert.equal(render('Hi {{name}}, {{ n }} new.', { name: 'Ada', n: 3 }), 'Hi Ada, 3 new.');
    assert.equal(render('Tags:{{#tags}} #{{.}}{{/tags}}.', { tags: ['a', 'b'] }), 'Tags: #a #b.');
    assert.equal(render('Tags:{{#tags}} #{{.}}{{/tags}}.', { tags: [] }), 'Tags:.');
    assert.equal(render('{{#tags}}{{.}}@{{tier}} {{/tags}}', { tags: ['x', 'y'], tier: 'pro' }), 'x@pro y@pro ');
    assert.equal(render('flag={{on}} missing=[{{gone}}]', { on: false, gone: undefined }), 'flag=false missing=[]');
    assert.equal(render('no tags at all }} {', {}), 'no tags at all }} {');
  });

  it('render – values are data: template syntax inside a value is inserted literally, never re-parsed', () => {
    const attack = '{{secret}} {{#tags}}{{.}}{{/tags}} {{.}} }}{{';
    assert.equal(render('Ticket: {{ticket}}', { ticket: attack, secret: 'LEAK' }), `Ticket: ${attack}`);
    assert.equal(render('{{#tags}}[{{.}}]{{/tags}}', { tags: ['{{secret}}', '{{/tags}}'], secret: 'LEAK' }), '[{{secret}}][{{/tags}}]');
    // `$&` and friends mean something to String.replace; they must not here.
    assert.equal(render('a {{v}} b', { v: "$& $' $1" }), "a $& $' $1 b");
  });

  it('parse – every malformed tag is a problem, with its offset', () => {
    const cases: Array<[string, RegExp]> = [
      ['{{ticekt', /never closed/],
      ['{{#tags}} x', /never closed with \{\{\/tags\}\}/],
      ['x {{/tags}}', /never opened/],
      ['{{#a}}{{#b}}{{/b}}{{/a}}', /cannot be nested/],
      ['{{#a}}{{/b}}', /closes \{\{#a\}\}/],
      ['{{.}}', /only means something inside/],
      ['{{ticket.name}}', /is not a tag/],
      ['{{>partial}}', /is not a tag/],
      ['{{{raw}}}', /is not a tag/],
      ['{{}}', /is not a tag/],
    ];
    for (const [text, want] of cases) {
      const { problems } = parseTemplate(text);
      assert.ok(problems.length > 0, text);
      assert.match(problems.map((p) => p.message).join(' | '), want, text);
      assert.ok(problems.every((p) => p.at >= 1), text);
    }
  });

  it('variables – missing, unknown, ill-typed and oversized values are all reported; defaults fill in', () => {
    const declared = new Map([
      ['ticket', compileVariable('ticket', { type: 'string', required: true, max_length: 10 })],
      ['tier', compileVariable('tier', { type: 'string', required: false, enum: ['free', 'pro'], default: 'free' })],
      ['n', compileVariable('n', { type: 'integer', required: false, minimum: 1 })],
      ['tags', compileVariable('tags', { type: 'array', required: false, max_items: 2, item_max_length: 3 })],
      ['urgent', compileVariable('urgent', { type: 'boolean', required: false })],
    ]);
    const ok = bindVariables(declared, { ticket: 'short', n: 2, tags: ['a'] });
    assert.ok(ok.ok);
    assert.deepEqual(ok.values, { ticket: 'short', tier: 'free', n: 2, tags: ['a'], urgent: undefined });

    const bad = bindVariables(declared, { extra: 1, tier: 'gold', n: 1.5, tags: ['a', 'b', 'c'], urgent: 'yes' });
    assert.ok(!bad.ok);
    const byName = Object.fromEntries(bad.problems.map((p) => [p.name, p.message]));
    assert.match(byName.extra!, /not a variable of this template/);
    assert.match(byName.ticket!, /required/);
    assert.match(byName.tier!, /one of "free", "pro"/);
    assert.match(byName.n!, /integer/);
    assert.match(byName.tags!, /3 items; at most 2/);
    assert.match(byName.urgent!, /true or false/);

    const huge = bindVariables(declared, { ticket: 'x'.repeat(11) });
    assert.ok(!huge.ok);
    assert.match(huge.problems[0]!.message, /11 characters long; at most 10/);
    assert.ok(!bindVariables(declared, { ticket: 'a', tags: ['long'] }).ok, 'item length');
    assert.ok(!bindVariables(declared, ['not', 'an', 'object']).ok);
    assert.ok(!bindVariables(declared, { ticket: { toString: 'x' } }).ok, 'objects are not strings');
  });

  it('shipped example – loads, and v2 renders its few-shot messages and the request turn', async () => {
    const { loaded, error } = await loadWith(SHIPPED);
    assert.equal(error, undefined, error?.message);
    const v2 = loaded!.prompts.templates.get('triage')!.get('v2')!;
    assert.equal(v2.model, 'fast');
    assert.deepEqual(v2.toolRefs, ['create_ticket@v1']);
    const bound = bindVariables(v2.variables, { ticket: 'Down {{tier}}', tags: ['api'], actions: ['create_ticket'] });
    assert.ok(bound.ok);
    const messages = renderMessages(v2, bound.values);
    assert.deepEqual(
      messages.map((m) => m.role),
      ['system', 'user', 'assistant', 'user'],
    );
    assert.equal(messages.at(-1)!.content, 'Customer tier: free (via email)\nTags: #api\nAllowed action: create_ticket\nTicket: Down {{tier}}');
    // Constant messages are rendered once at load and shared; the request turn is new each time.
    assert.equal(messages[0]!.content, renderMessages(v2, bound.values)[0]!.content);
  });

  it('load – a template with an undeclared variable or a missing tool schema is a config error naming file and path', async () => {
    const { error } = await loadWith({
      'prompts/bad/v1.yaml': simpleTemplate({ prefix: '{{who}} says', extra: 'tools: [create_ticket@v9, nothing@v1]\n' }),
      'tools/create_ticket/v1.json': SHIPPED['tools/create_ticket/v1.json']!,
      'prompts/worse/v1.yaml': `model: nowhere
parameters: { temperature: 7, stream: true }
variables:
  tags: { type: array, example: [1] }
  n: { type: integer, required: true, default: 3 }
messages:
  - role: user
    content: "{{tags}} {{#n}}x{{/n}} {{#tags}}"
`,
    });
    assert.ok(error);
    const text = error.message;
    assert.match(text, /bad\/v1\.yaml: messages\[1\]\.content: \{\{who\}\} is not a declared variable/);
    assert.match(text, /bad\/v1\.yaml: tools\[0\]: tool create_ticket has no version v9/);
    assert.match(text, /bad\/v1\.yaml: tools\[1\]: no tool schema nothing\/v1\.json/);
    assert.match(text, /worse\/v1\.yaml: model: unknown model or route "nowhere"/);
    assert.match(text, /worse\/v1\.yaml: parameters\.stream: "stream" cannot be a template parameter/);
    assert.match(text, /worse\/v1\.yaml: parameters\.temperature:/);
    assert.match(text, /worse\/v1\.yaml: variables\.tags\.example: the example item 0 must be a string/);
    assert.match(text, /worse\/v1\.yaml: variables\.n\.default: a required variable has no default/);
    assert.match(text, /\{\{tags\}\} is an array; insert its items with \{\{#tags\}\}/);
    assert.match(text, /\{\{#n\}\} is a section, which iterates arrays only/);
    assert.match(text, /section \{\{#tags\}\} is never closed/);
  });

  it('load – pins naming unknown versions, apps or prompts are config errors; the good files are not half-loaded', async () => {
    const { error } = await loadWith({
      'prompts/triage/v1.yaml': simpleTemplate(),
      'prompts/pins.yaml': `triage:
  live: v1
  canary: { version: v7, weight: 0.1 }
  shadow: v1
  sample: 0.5
  history: [v0]
  apps:
    nobody: v1
ghost: v1
`,
    });
    assert.ok(error);
    assert.match(error.message, /pins\.yaml: triage\.canary\.version: triage has no version v7/);
    assert.match(error.message, /pins\.yaml: triage\.shadow: the shadow is the live version v1/);
    assert.match(error.message, /pins\.yaml: triage\.history\[0\]: triage has no version v0/);
    assert.match(error.message, /pins\.yaml: triage\.apps\.nobody: no key has app "nobody"/);
    assert.match(error.message, /pins\.yaml: ghost: no prompt template named "ghost"/);
  });

  it('load – a malformed eval set is reported by line', async () => {
    const { error } = await loadWith({
      ...SHIPPED,
      'evals/triage/v2.jsonl': [
        '{"eval_set": {"threshold": 1.5}}',
        '{"id": "a", "checks": []}',
        '{"id": "b", "checks": [{"type": "regex", "pattern": "(a+)+\\\\1"}]}',
        '{"id": "c", "checks": [{"type": "judge", "rubric": "be nice"}]}',
        'not json',
      ].join('\n'),
    });
    assert.ok(error);
    assert.match(error.message, /evals\/triage\/v2\.jsonl: line 5: not valid JSON/);
    const { error: second } = await loadWith({
      ...SHIPPED,
      'evals/triage/v2.jsonl': [
        '{"eval_set": {"threshold": 0.5, "judge_model": "nope"}}',
        '{"id": "a", "checks": []}',
        '{"id": "b", "checks": [{"type": "regex", "pattern": "(a+)+\\\\1"}]}',
        '{"id": "c", "checks": [{"type": "json_schema", "schema": {"$ref": "#/x"}}]}',
      ].join('\n'),
    });
    assert.ok(second);
    assert.match(second.message, /line 2: checks: a case needs at least one check/);
    assert.match(second.message, /line 3: checks\[0\]: the pattern cannot run in linear time/);
    assert.match(second.message, /line 4: checks\[0\]: #\/\$ref: the keyword "\$ref" is not supported/);
    assert.match(second.message, /eval_set\.judge_model: unknown chat model or route "nope"/);
  });

  it('load – a YAML eval set loads like its JSONL twin, and its problems carry the lines they start on', async () => {
    const { loaded, error } = await loadWith(SHIPPED);
    assert.equal(error, undefined);
    const shipped = loaded!.prompts.evals.get('triage')?.get('v1');
    assert.ok(shipped, 'the shipped YAML set is loaded');
    assert.ok(shipped.cases.length >= 10);
    assert.equal(shipped.threshold, 0.9);
    assert.ok(shipped.cases.every((c, i, all) => i === 0 || c.line > all[i - 1]!.line), 'each case has its own line');

    const { error: bad } = await loadWith({
      ...SHIPPED,
      'evals/triage/v2.yaml': [
        'eval_set: {threshold: 0.5, judge_model: nope}',
        'cases:',
        '  - {id: a, checks: []}',
        '  - id: b',
        '    checks:',
        '      - {type: regex, pattern: "(a+)+\\\\1"}',
        'extra: 1',
      ].join('\n'),
    });
    assert.ok(bad);
    assert.match(bad.message, /evals\/triage\/v2\.yaml: line 3: checks: a case needs at least one check/);
    assert.match(bad.message, /v2\.yaml: line 4: checks\[0\]: the pattern cannot run in linear time/);
    assert.match(bad.message, /v2\.yaml: line 1: eval_set\.judge_model: unknown chat model or route "nope"/);
    assert.match(bad.message, /v2\.yaml: line 7: extra: unknown key/);

    const { error: broken } = await loadWith({ ...SHIPPED, 'evals/triage/v2.yaml': 'eval_set: {threshold: 0.5}\ncases: [\n' });
    assert.ok(broken);
    assert.match(broken.message, /evals\/triage\/v2\.yaml: line \d+: YAML syntax/);

    const { error: twice } = await loadWith({ ...SHIPPED, 'evals/triage/v1.jsonl': '{"eval_set": {"threshold": 0.5}}\n{"id": "a", "checks": [{"type": "exact", "value": "x"}]}' });
    assert.ok(twice);
    assert.match(twice.message, /version v1 of triage exists twice/);
  });
});
