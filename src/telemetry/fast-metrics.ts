// prom-client's metrics, with `labels(...)` made cheap for the hot path.
//
// prom-client validates and hashes the label set on every inc/observe and
// allocates a bound child per `labels()` call: about a tenth of the gateway's
// per-request CPU and allocation. These subclasses cache one child per label
// set; the child updates the series' entry in the metric's own `hashMap`
// directly, so scraping, `get()`, `reset()` and the registry work unchanged.
// Anything that can replace or drop entries (reset, remove, zero) empties the
// cache, and the next `labels()` call finds or creates the entry again.
import { Counter, Gauge, Histogram } from 'prom-client';

type Labels = Partial<Record<string, string | number>>;
type LabelArgs = Array<string | number> | [Labels];

interface Entry {
  labels: Labels;
  value: number;
}

interface HistogramEntry {
  labels: Labels;
  bucketValues: Record<number, number>;
  sum: number;
  count: number;
}

/** Internal fields of prom-client's metrics (stable across v15) that the children write to. */
interface Internals<E> {
  hashMap: Record<string, E>;
  labelNames: readonly string[];
  upperBounds?: number[];
}

function labelsOf(labelNames: readonly string[], args: LabelArgs): Labels {
  const first = args[0];
  if (args.length === 1 && typeof first === 'object') return first;
  const labels: Labels = {};
  labelNames.forEach((name, i) => {
    labels[name] = args[i] as string | number;
  });
  return labels;
}

/** The entry whose labels equal these: searched once per new child, never per update. */
function findEntry<E extends { labels: Labels }>(hashMap: Record<string, E>, labels: Labels): E | undefined {
  const names = Object.keys(labels);
  for (const key in hashMap) {
    const entry = hashMap[key]!;
    if (Object.keys(entry.labels).length === names.length && names.every((n) => String(entry.labels[n]) === String(labels[n]))) return entry;
  }
  return undefined;
}

/** A label value as prom-client writes it: numbers as their text, a missing value as empty. */
function labelValue(value: unknown): string {
  return typeof value === 'string' ? value : value === undefined || value === null ? '' : String(value);
}

/**
 * One child per label set, made on first use, found again through one Map per
 * label, keyed by that label's value. Label values are mostly strings the
 * gateway already holds (route and model names from config), whose hashes V8
 * keeps: a lookup builds no key string, where joining the values into one
 * cost as much as the update itself.
 */
class ChildCache<C> {
  #root = new Map<string, unknown>();

  get(labelNames: readonly string[], args: LabelArgs, make: (labels: Labels) => C): C {
    const first = args[0];
    const named = args.length === 1 && typeof first === 'object';
    const count = named ? labelNames.length : args.length;
    let node = this.#root;
    for (let i = 0; i < count - 1; i++) {
      const value = labelValue(named ? (first as Labels)[labelNames[i]!] : args[i]);
      let next = node.get(value) as Map<string, unknown> | undefined;
      if (!next) node.set(value, (next = new Map()));
      node = next;
    }
    const last = labelValue(count === 0 ? '' : named ? (first as Labels)[labelNames[count - 1]!] : args[count - 1]);
    let child = node.get(last) as C | undefined;
    if (!child) {
      child = make(labelsOf(labelNames, args));
      node.set(last, child);
    }
    return child;
  }

  clear(): void {
    this.#root = new Map();
  }
}

function checkFinite(value: number): void {
  if (!Number.isFinite(value)) throw new TypeError(`Value is not a valid number: ${value}`);
}

export class FastCounter<T extends string = string> extends Counter<T> {
  private readonly children = new ChildCache<Counter.Internal>();

  override labels(...args: LabelArgs): Counter.Internal {
    const self = this as unknown as Internals<Entry>;
    return this.children.get(self.labelNames, args, (labels) => {
      // Validates the labels and creates the series at 0.
      super.labels(labels as never).inc(0);
      const entry = findEntry(self.hashMap, labels)!;
      return {
        inc(value = 1) {
          checkFinite(value);
          if (value < 0) throw new Error('It is not possible to decrease a counter');
          entry.value += value;
        },
      };
    });
  }

  override reset(): void {
    this.children?.clear(); // prom-client calls this from its constructor, before our fields exist
    super.reset();
  }

  override remove(...args: LabelArgs): void {
    this.children?.clear(); // prom-client calls this from its constructor, before our fields exist
    super.remove(...(args as never[]));
  }
}

export class FastGauge<T extends string = string> extends Gauge<T> {
  private readonly children = new ChildCache<Gauge.Internal<T>>();

  override labels(...args: LabelArgs): Gauge.Internal<T> {
    const self = this as unknown as Internals<Entry>;
    return this.children.get(self.labelNames, args, (labels) => {
      const slow = super.labels(labels as never);
      slow.inc(0);
      const entry = findEntry(self.hashMap, labels)!;
      return {
        inc(value = 1) {
          checkFinite(value);
          entry.value += value;
        },
        dec(value = 1) {
          checkFinite(value);
          entry.value -= value;
        },
        set(value) {
          checkFinite(value);
          entry.value = value;
        },
        setToCurrentTime: () => slow.setToCurrentTime(),
        startTimer: () => slow.startTimer(),
      };
    });
  }

  override reset(): void {
    this.children?.clear(); // prom-client calls this from its constructor, before our fields exist
    super.reset();
  }

  override remove(...args: LabelArgs): void {
    this.children?.clear(); // prom-client calls this from its constructor, before our fields exist
    super.remove(...(args as never[]));
  }
}

export class FastHistogram<T extends string = string> extends Histogram<T> {
  private readonly children = new ChildCache<Histogram.Internal<T>>();

  override labels(...args: LabelArgs): Histogram.Internal<T> {
    const self = this as unknown as Internals<HistogramEntry>;
    return this.children.get(self.labelNames, args, (labels) => {
      const slow = super.labels(labels as never);
      // zero() empties the cache: fine, this child is not in it yet.
      if (!findEntry(self.hashMap, labels)) this.zero(labels as never);
      const entry = findEntry(self.hashMap, labels)!;
      const bounds = self.upperBounds!;
      // bucketValues is keyed by each bound's text: made once here, not from the number on every observation.
      const keys = bounds.map(String);
      return {
        observe(value) {
          checkFinite(value);
          entry.sum += value;
          entry.count += 1;
          // Buckets hold their own count; the export adds them up.
          for (let i = 0; i < bounds.length; i++) {
            if (value <= bounds[i]!) {
              (entry.bucketValues as unknown as Record<string, number>)[keys[i]!]! += 1;
              return;
            }
          }
        },
        startTimer: () => slow.startTimer(),
      };
    });
  }

  override zero(labels: Partial<Record<T, string | number>>): void {
    this.children?.clear(); // prom-client calls this from its constructor, before our fields exist
    super.zero(labels);
  }

  override reset(): void {
    this.children?.clear(); // prom-client calls this from its constructor, before our fields exist
    super.reset();
  }

  override remove(...args: LabelArgs): void {
    this.children?.clear(); // prom-client calls this from its constructor, before our fields exist
    super.remove(...(args as never[]));
  }
}
