// The `cache:` section of config/gateway.yaml, and the `cache:` a model or a
// route may carry to override it. Which tenants may share an entry is not
// here: that is the lane's `cache` scope (policies/).
import { z } from 'zod';

const DAY_SECONDS = 86_400;

export const cacheConfigSchema = z
  .strictObject({
    /** Off: no lookups, no stores, no `x-gateway-cache` header. */
    enabled: z.boolean().default(true),
    /** How long an entry lives unless its model or route says otherwise. */
    default_ttl_seconds: z.number().int().positive().max(30 * DAY_SECONDS).default(3_600),
    /** Answers (or embeddings) larger than this, serialised, are not stored. */
    max_entry_bytes: z.number().int().positive().max(64 * 1024 * 1024).default(1024 * 1024),
    /** Byte cap of the in-memory store (used when redis.url is empty). Least recently used entries go first. */
    memory_max_bytes: z.number().int().positive().default(64 * 1024 * 1024),
    /** How long identical concurrent requests wait for the first one's answer before calling upstream themselves. */
    single_flight_timeout_ms: z.number().int().positive().max(600_000).default(30_000),
  })
  .prefault({});

/** Per model or per route; a route's settings win over its model's. */
export const cacheRuleSchema = z.strictObject({
  /** False: never cache this model (or route). */
  enabled: z.boolean().optional(),
  ttl_seconds: z.number().int().positive().max(30 * DAY_SECONDS).optional(),
  /**
   * Cache answers that sampling makes vary from call to call: a temperature
   * above 0 (or unset, which providers treat as 1) without a `seed`, or n > 1.
   * Off by default: replaying one sample forever is a behaviour change.
   */
  allow_nondeterministic: z.boolean().optional(),
});

export type CacheConfig = z.infer<typeof cacheConfigSchema>;
export type CacheRuleConfig = z.infer<typeof cacheRuleSchema>;
