// What the request context holds about budgets: the long-lived services and
// one request's reservation. Types only, importing nothing that imports the
// context, so pipeline/context.ts can name them without an import cycle.
import type { Price } from './pricing.js';
import type { StoreErrorMode } from './store-errors.js';
import type { BudgetStore, CounterCheck } from './store.js';

export interface BudgetHold {
  reservation: string;
  store: BudgetStore;
  /** Budgets' checks: what a stream extends as it flows. */
  budgetChecks: CounterCheck[];
  /** Every counter the reservation holds, and which kind of limit it is: what settlement updates. */
  counters: Array<{ id: string; ttlMs: number; kind: 'budget' | 'rate' }>;
  names: string[];
  price: Price;
  promptTokens: number;
  /** Output tokens reserved so far. */
  reservedOutput: number;
  settled: boolean;
}

export interface BudgetServices {
  store: BudgetStore;
  /** Local accounting for fail-open budgets while the shared store is unreachable. */
  fallback: BudgetStore;
  /**
   * Rebuilds counters from the usage ledger after the store lost its data, or
   * (a shared store whose loss only an operator can repair) throws
   * budget_unavailable.
   */
  rebuild(store: BudgetStore): Promise<void>;
  concurrency: Map<string, number>;
  /** Logs why the store failed (rate-limited). */
  reportStoreError(err: unknown, mode: StoreErrorMode): void;
  close(): void;
}
