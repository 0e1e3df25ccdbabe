// What the cache stages keep about one request between the lookup and the
// store, as fields of the request context (ctx.chatCache, ctx.embeddingsCache).
// Types only, so the context module can name them without importing a stage.
import type { EmbeddingEntry } from './entry.js';
import type { CacheService } from './service.js';
import type { EntryKey } from './store.js';

/** A chat cache miss: where its answer goes and the single flight it leads. */
export interface PendingChatStore {
  cache: CacheService;
  key: EntryKey;
  lane: string;
  ttlMs: number;
  maxEntryBytes: number;
  /** Settles the single flight this request leads, if it leads one. */
  settle: ((value: string | undefined) => void) | undefined;
  /** The answer the reply tap accepted; the after phase stores it (and settles the flight with it). */
  answer: unknown;
  /** The answer is complete and will be stored after the response: the flight is settled by that. */
  committing: boolean;
  done: boolean;
}

export type EmbeddingItem = string | number[];

/** An embeddings batch with misses: the hits to merge back and the new vectors to store. */
export interface PendingEmbeddings {
  cache: CacheService;
  scope: string;
  lane: string;
  model: string;
  ttlMs: number;
  maxEntryBytes: number;
  items: EmbeddingItem[];
  keys: EntryKey[];
  hits: Map<number, EmbeddingEntry>;
  /** Original positions of the inputs sent upstream, in the order sent. */
  misses: number[];
  encoding: 'float' | 'base64';
  /** The new vectors once the upstream answered; the after phase stores them. */
  fresh: { vectors: Array<ArrayLike<number>>; shares: number[]; upstreamModel: string; deployment: string } | undefined;
}
