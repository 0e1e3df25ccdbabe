// Settings that shape the process itself: the listening socket, the audit
// trail's sink and folder, the Redis connection. A reload cannot change them
// (the running values stay); it names each one that differs, so an operator
// who edited the port does not believe it moved.
import type { GatewayConfig } from './schema.js';

export const RESTART_ONLY_SECTIONS = ['server', 'audit', 'redis'] as const;

/** The running values of everything a reload cannot change. */
export type RestartOnlySettings = Pick<GatewayConfig, (typeof RESTART_ONLY_SECTIONS)[number]> & {
  cacheMemoryMaxBytes: number;
  /** Where files are kept (files.store, dir, s3); their limits follow a reload. */
  filesStore: Pick<GatewayConfig['files'], 'store' | 'dir' | 's3'>;
};

export function restartOnlySettings(config: GatewayConfig): RestartOnlySettings {
  const { store, dir, s3 } = config.files;
  return { server: config.server, audit: config.audit, redis: config.redis, cacheMemoryMaxBytes: config.cache.memory_max_bytes, filesStore: { store, dir, s3 } };
}

/** The dotted paths (`server.port`, `redis.url`) whose value in `next` differs from the running one. */
export function restartOnlyChanges(running: RestartOnlySettings, next: RestartOnlySettings): string[] {
  const changed: string[] = [];
  const walk = (a: unknown, b: unknown, at: string) => {
    if (isPlainObject(a) && isPlainObject(b)) {
      for (const key of new Set([...Object.keys(a), ...Object.keys(b)])) walk(a[key], b[key], `${at}.${key}`);
    } else if (JSON.stringify(a) !== JSON.stringify(b)) {
      changed.push(at);
    }
  };
  for (const section of RESTART_ONLY_SECTIONS) walk(running[section], next[section], section);
  // The memory cache's store is sized once, when it is created.
  walk(running.cacheMemoryMaxBytes, next.cacheMemoryMaxBytes, 'cache.memory_max_bytes');
  // The files service opens its store once, at start.
  walk(running.filesStore, next.filesStore, 'files');
  return changed;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export type ReloadResult =
  /** restart_required: restart-only settings the file changed; their running values stay. */
  | { ok: true; restart_required: string[] }
  | { ok: false; problems: string };
