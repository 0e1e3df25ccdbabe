// The cached-child metrics must expose exactly what prom-client's own would
// after the same updates, through every way of updating and clearing them.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { FastCounter, FastGauge, FastHistogram } from '../../src/telemetry/fast-metrics.js';

function pair() {
  const plain = new Registry();
  const fast = new Registry();
  const labelNames = ['route', 'lane'] as const;
  const buckets = [0.01, 0.1, 1];
  return {
    plain,
    fast,
    counters: [new Counter({ name: 'c_total', help: 'c', labelNames, registers: [plain] }), new FastCounter({ name: 'c_total', help: 'c', labelNames, registers: [fast] })],
    gauges: [new Gauge({ name: 'g', help: 'g', labelNames, registers: [plain] }), new FastGauge({ name: 'g', help: 'g', labelNames, registers: [fast] })],
    histograms: [
      new Histogram({ name: 'h_seconds', help: 'h', labelNames, buckets, registers: [plain] }),
      new FastHistogram({ name: 'h_seconds', help: 'h', labelNames, buckets, registers: [fast] }),
    ],
  };
}

describe('fast metrics', () => {
  it('expose the same series and values as prom-client after the same updates', async () => {
    const m = pair();
    for (const c of m.counters) {
      c.labels('a', 'green').inc();
      c.labels('a', 'green').inc(2.5);
      c.labels({ route: 'b', lane: 'red' }).inc(4);
      c.inc({ route: 'a', lane: 'green' }, 1); // the unlabelled-call path writes the same series
      c.labels('b', 'red').inc();
    }
    for (const g of m.gauges) {
      g.labels('a', 'green').inc();
      g.labels('a', 'green').inc(3);
      g.labels('a', 'green').dec();
      g.labels('b', 'red').set(7);
      g.labels('b', 'red').dec(2);
    }
    for (const h of m.histograms) {
      for (const v of [0.005, 0.01, 0.05, 0.5, 1, 3]) h.labels('a', 'green').observe(v);
      h.labels({ route: 'b', lane: 'red' }).observe(0.2);
      h.observe({ route: 'a', lane: 'green' }, 0.02);
    }
    assert.equal(await m.fast.metrics(), await m.plain.metrics());
    assert.match(await m.fast.metrics(), /c_total\{route="a",lane="green"\} 4.5/);
    assert.match(await m.fast.metrics(), /h_seconds_bucket\{le="0.1",route="a",lane="green"\} 4/);
  });

  it('start over after reset and remove, and keep counting through new children', async () => {
    const m = pair();
    for (const c of m.counters) {
      c.labels('a', 'green').inc(5);
      c.reset();
      c.labels('a', 'green').inc(1);
      c.labels('b', 'red').inc(2);
      c.remove('b', 'red');
      c.labels('b', 'red').inc(3);
    }
    for (const h of m.histograms) {
      h.labels('a', 'green').observe(0.5);
      h.zero({ route: 'a', lane: 'green' });
      h.labels('a', 'green').observe(0.05);
      h.reset();
      h.labels('b', 'red').observe(2);
    }
    for (const g of m.gauges) {
      g.labels('a', 'green').set(9);
      g.reset();
      g.labels('a', 'green').inc();
    }
    const text = await m.fast.metrics();
    assert.equal(text, await m.plain.metrics());
    assert.match(text, /c_total\{route="a",lane="green"\} 1\n/);
    assert.match(text, /c_total\{route="b",lane="red"\} 3\n/);
    assert.doesNotMatch(text, /h_seconds_count\{route="a"/);
  });

  it('count a number label and its text as one series, and keep series apart that only a joined key would mix up', async () => {
    const m = pair();
    for (const c of m.counters) {
      c.labels('a', 200 as never).inc();
      c.labels('a', '200').inc(2);
      c.labels({ route: 'a', lane: 200 as never }).inc(4);
      c.labels('x\u0000y', 'z').inc(1);
      c.labels('x', 'y\u0000z').inc(10);
    }
    const text = await m.fast.metrics();
    assert.equal(text, await m.plain.metrics());
    assert.match(text, /c_total\{route="a",lane="200"\} 7\n/);
  });

  it('refuse what prom-client refuses', () => {
    const { counters, gauges, histograms } = pair();
    assert.throws(() => counters[1]!.labels('a', 'green').inc(-1), /decrease/);
    assert.throws(() => counters[1]!.labels('a', 'green').inc(Number.NaN), /not a valid number/);
    assert.throws(() => histograms[1]!.labels('a', 'green').observe(Number.POSITIVE_INFINITY), /not a valid number/);
    assert.throws(() => gauges[1]!.labels('a', 'green').set(Number.NaN), /not a valid number/);
    assert.throws(() => counters[1]!.labels({ route: 'a', nope: 'x' } as never).inc(), /Added label "nope"/);
  });
});
