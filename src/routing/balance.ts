// Orders one model's deployments for a request: the first is the pick, the
// rest follow as fallbacks in the same strategy's order. Deployments resting
// after a 429 go last, in that order, so traffic goes to the ones the
// provider has not asked to wait while they rest.
import type { CompiledModel } from '../config/compile.js';
import type { Deployment } from '../providers/types.js';
import type { HealthRegistry } from './health.js';

export function orderDeployments(model: CompiledModel, health: HealthRegistry, random: () => number = Math.random): Deployment[] {
  const list = model.deployments;
  if (list.length < 2) return list;
  const ordered = byStrategy(model, list, health, random);
  const now = Date.now();
  const cooling = ordered.filter((d) => health.get(d).coolingFor(now) > 0);
  if (cooling.length === 0 || cooling.length === ordered.length) return ordered;
  return [...ordered.filter((d) => !cooling.includes(d)), ...cooling];
}

function byStrategy(model: CompiledModel, list: Deployment[], health: HealthRegistry, random: () => number): Deployment[] {
  switch (model.balance) {
    case 'priority':
      return list;
    case 'weighted':
      // Efraimidis–Spirakis: sorting by u^(1/w) is a weighted shuffle.
      return list
        .map((d) => ({ d, key: random() ** (1 / d.weight) }))
        .sort((a, b) => b.key - a.key)
        .map((x) => x.d);
    case 'least_busy':
      return shuffle(list, random).sort((a, b) => health.get(a).inflight - health.get(b).inflight);
    case 'least_latency': {
      // Power of two choices: of two random deployments, the cheaper goes first.
      const rest = shuffle(list, random);
      const [a, b] = rest as [Deployment, Deployment];
      const first = health.get(a).cost() <= health.get(b).cost() ? a : b;
      return [first, ...rest.filter((d) => d !== first).sort((x, y) => health.get(x).cost() - health.get(y).cost())];
    }
  }
}

function shuffle<T>(items: readonly T[], random: () => number): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}
