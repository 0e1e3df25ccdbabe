import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { choosePinned, exactAllowed, sharesOf, splitFor, type CompiledPin, type Split } from '../../src/prompts/catalog.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { OTHER_KEY, postChat } from '../helpers/routing.js';
import { loadWith, promptConfig, simpleTemplate } from './fixtures.js';

const TEMPLATES = {
  'prompts/triage/v12.yaml': simpleTemplate({ prefix: 'v12' }),
  'prompts/triage/v13.yaml': simpleTemplate({ prefix: 'v13' }),
  'prompts/triage/v11.yaml': simpleTemplate({ prefix: 'v11' }),
};

const PINS = `# pins for the canary tests
triage:
  live: v12
  canary: { version: v13, weight: 0.1 } # v13 at 10%
  exact_versions: [v11]
  apps:
    app-beta: v11 # beta stays on v11
`;

/**
 * Bounds for a binomial count: n draws at p land within mean ± 5 standard
 * deviations except about once in 1.7 million runs, so the test does not flake.
 */
function bounds(n: number, p: number): [number, number] {
  const sd = Math.sqrt(n * p * (1 - p));
  return [n * p - 5 * sd, n * p + 5 * sd];
}

describe('pins', () => {
  it('resolution – per-app pins win over the prompt\'s, with their own canary and exact versions', async () => {
    const { loaded, error } = await loadWith({
      ...TEMPLATES,
      'prompts/pins.yaml': `triage:
  live: v12
  canary: { version: v13, weight: 0.25 }
  shadow: v13
  sample: 0.5
  exact_versions: true
  apps:
    app-beta: v11
    app-alpha: { live: v13, canary: { version: v12, weight: 0.5 }, exact_versions: [v12] }
`,
    });
    assert.equal(error, undefined, error?.message);
    const pin = loaded!.prompts.pins.get('triage') as CompiledPin;
    const base = splitFor(pin, 'someone-else');
    assert.equal(base.live, 'v12');
    assert.deepEqual(base.shadow, { version: 'v13', sample: 0.5 });
    assert.ok(exactAllowed(base, 'v11'));

    const beta = splitFor(pin, 'app-beta');
    assert.deepEqual([beta.live, beta.canary, beta.shadow], ['v11', undefined, undefined], 'a version alone pins exactly that');
    assert.ok(exactAllowed(beta, 'v13'), 'exact_versions is inherited');

    const alpha = splitFor(pin, 'app-alpha');
    assert.equal(alpha.live, 'v13');
    assert.ok(exactAllowed(alpha, 'v12'));
    assert.ok(!exactAllowed(alpha, 'v11'));
    assert.deepEqual(sharesOf(alpha), { v13: 0.5, v12: 0.5 });

    // Deterministic draws: below the weight is the canary; a canary request never samples a shadow.
    assert.deepEqual(choosePinned(base, () => 0.2), { version: 'v13', variant: 'canary', shadow: undefined });
    const draws = [0.9, 0.1];
    assert.deepEqual(
      choosePinned(base, () => draws.shift()!),
      { version: 'v12', variant: 'pinned', shadow: 'v13' },
    );
    assert.deepEqual(choosePinned(base, () => 0.99), { version: 'v12', variant: 'pinned', shadow: undefined });
  });

  it('canary – over many requests the canary gets its weight, within statistical bounds', () => {
    const split: Split = { live: 'v12', canary: { version: 'v13', weight: 0.1 }, shadow: { version: 'v14', sample: 0.2 }, exact: false };
    const n = 20_000;
    let canary = 0;
    let shadows = 0;
    for (let i = 0; i < n; i++) {
      const c = choosePinned(split);
      if (c.variant === 'canary') canary++;
      else if (c.shadow) shadows++;
    }
    const [lo, hi] = bounds(n, 0.1);
    assert.ok(canary > lo && canary < hi, `canary ${canary} of ${n}, expected within (${lo.toFixed(0)}, ${hi.toFixed(0)})`);
    // Shadows are sampled from the live (non-canary) requests.
    const live = n - canary;
    const [slo, shi] = bounds(live, 0.2);
    assert.ok(shadows > slo && shadows < shi, `shadows ${shadows} of ${live}, expected within (${slo.toFixed(0)}, ${shi.toFixed(0)})`);
  });

  describe('over HTTP', () => {
    let gw: TestGateway;
    before(async () => {
      gw = await startTestGateway({ yaml: promptConfig(), files: { ...TEMPLATES, 'prompts/pins.yaml': PINS } });
    });
    after(() => gw.close());

    it('canary – 1,000 requests split about 90/10, each marked in its header and its answer; the per-app pin never gets the canary', async () => {
      const n = 1000;
      const counts: Record<string, number> = {};
      // In batches: enough in flight to be quick, few enough to be polite to the test machine.
      for (let i = 0; i < n; i += 50) {
        const results = await Promise.all(
          Array.from({ length: 50 }, async (_, j) => {
            const res = await postChat(gw, { model: 'prompt:triage', messages: [], variables: { ticket: `t${i + j}` } });
            const body = (await res.json()) as { choices: Array<{ message: { content: string } }> };
            const version = res.headers.get('x-gateway-prompt-version')!;
            // The version in the header is the one that was rendered.
            assert.equal(body.choices[0]!.message.content, `Echo: ${version.split('@')[1]}: t${i + j}`);
            return version;
          }),
        );
        for (const v of results) counts[v] = (counts[v] ?? 0) + 1;
      }
      assert.deepEqual(Object.keys(counts).sort(), ['triage@v12', 'triage@v13']);
      const [lo, hi] = bounds(n, 0.1);
      assert.ok(counts['triage@v13']! > lo && counts['triage@v13']! < hi, `canary got ${counts['triage@v13']} of ${n}`);

      for (let i = 0; i < 50; i++) {
        const res = await postChat(gw, { model: 'prompt:triage', messages: [], variables: { ticket: 'beta' } }, { key: OTHER_KEY });
        assert.equal(res.headers.get('x-gateway-prompt-version'), 'triage@v11');
        await res.arrayBuffer();
      }
    });

    it('exact versions – only the listed ones may be asked for', async () => {
      const ok = await postChat(gw, { model: 'prompt:triage@v11', messages: [], variables: { ticket: 'x' } });
      assert.equal(ok.status, 200);
      const refused = await postChat(gw, { model: 'prompt:triage@v13', messages: [], variables: { ticket: 'x' } });
      assert.equal(refused.status, 403);
      const canaryMetric = await (await fetch(`${gw.url}/metrics`)).text();
      assert.match(canaryMetric, /lanegate_prompt_requests_total\{prompt="triage",version="v13",variant="canary"\} \d+/);
    });
  });
});
