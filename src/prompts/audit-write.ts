// Writes prompt lifecycle records (promotion, rollback) and eval runs' request records from the CLI,
// straight to the configured sink, and says whether it was kept: a command
// that changed a pin must not report success with its record lost. The
// records have their own chain (_prompts), so the CLI never appends to a
// chain a running gateway holds open.
import { createFileBackend } from '../audit/transport/file-sink.js';
import { toPending } from '../audit/transport/pending.js';
import { createRedisBackend } from '../audit/transport/redis-sink.js';
import type { AuditEntry } from '../audit/schema.js';
import type { GatewayConfig } from '../config/schema.js';
import { createCommandRedis } from '../services.js';
import { createLogger } from '../telemetry/logger.js';
import { createMetrics } from '../telemetry/metrics.js';

export async function writeAuditRecord(config: GatewayConfig, entry: AuditEntry): Promise<{ ok: true; where: string } | { ok: false; reason: string }> {
  return writeAuditRecords(config, [entry]);
}

/** Several records in one write; each must belong to a chain no running gateway appends to (_prompts, _eval). */
export async function writeAuditRecords(config: GatewayConfig, entries: readonly AuditEntry[]): Promise<{ ok: true; where: string } | { ok: false; reason: string }> {
  const audit = config.audit;
  if (audit.sink === 'off') return { ok: false, reason: 'the audit trail is off (audit.sink: off)' };
  const logger = createLogger({ level: 'silent' });
  if (audit.sink === 'file') {
    const backend = createFileBackend({ dir: audit.dir, rotateBytes: audit.rotate_bytes, logger });
    try {
      const outcome = await backend.write(entries.map(toPending));
      if (outcome.failed.length > 0) return { ok: false, reason: String((outcome.error as Error | undefined)?.message ?? outcome.error) };
      await backend.sync();
      return { ok: true, where: audit.dir };
    } finally {
      await backend.close();
    }
  }
  const redis = createCommandRedis(config.redis, { metrics: createMetrics({ defaultMetrics: false }) });
  try {
    const deadline = Date.now() + 5_000;
    while (!redis.isReady() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    const backend = createRedisBackend({ redis, maxLen: audit.redis.max_len, retentionMs: () => audit.retention_days * 86_400_000 });
    const outcome = await backend.write(entries.map(toPending));
    if (outcome.failed.length > 0) return { ok: false, reason: String((outcome.error as Error | undefined)?.message ?? outcome.error) };
    return { ok: true, where: 'redis streams' };
  } finally {
    await redis.close();
  }
}
