// The `admission:` section: how many requests run at once, globally and per
// deployment, how many may wait, and for how long. The defaults keep a
// gateway out of the box from queueing without bound (README "Overload and
// admission control" says how they were chosen).
import { z } from 'zod';

/** Requests running at once. */
const maxInflight = z.number().int().positive().max(1_000_000);
/** Requests waiting for a slot; 0 sheds at once when every slot is taken. */
const maxQueue = z.number().int().min(0).max(1_000_000);

export const admissionConfigSchema = z
  .strictObject({
    enabled: z.boolean().default(true),
    /** The longest any request waits in a queue, summed over its gates; then it is shed. */
    queue_timeout_ms: z.number().int().min(0).max(60_000).default(1_000),
    /** `retry-after` on a shed request. */
    retry_after_s: z.number().int().min(0).max(3_600).default(1),
    /** Every API request after authentication, cache hits included; the body is not read while it waits. */
    global: z.strictObject({ max_inflight: maxInflight.default(1024), max_queue: maxQueue.default(256) }).prefault({}),
    /**
     * Each deployment's gate, taken per attempt so a full deployment lets the
     * next candidate try. Unset max_inflight: the provider's `connections`
     * (128 for mock), so the upstream connection pool never queues requests of its own.
     */
    deployment: z
      .strictObject({ max_inflight: maxInflight.optional(), max_queue: maxQueue.default(64) })
      .prefault({}),
    /** By deployment id (`<provider>/<model>`): overrides of the above. */
    deployments: z.record(z.string(), z.strictObject({ max_inflight: maxInflight.optional(), max_queue: maxQueue.optional() })).default({}),
  })
  .prefault({});

export type AdmissionConfig = z.infer<typeof admissionConfigSchema>;
