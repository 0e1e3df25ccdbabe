// One keep-alive undici Pool per upstream origin, shared by every adapter and
// kept across config reloads so a reload never drops warm connections.
import { Pool } from 'undici';

export interface PoolOptions {
  connections: number;
  connectTimeoutMs: number;
}

export interface HttpClients {
  pool(origin: string, options: PoolOptions): Pool;
  close(): Promise<void>;
}

export function createHttpClients(): HttpClients {
  const pools = new Map<string, Pool>();
  return {
    pool(origin, options) {
      const key = `${origin}|${options.connections}|${options.connectTimeoutMs}`;
      let pool = pools.get(key);
      if (!pool) {
        pool = new Pool(origin, {
          connections: options.connections,
          connect: { timeout: options.connectTimeoutMs },
          keepAliveTimeout: 30_000,
          // Per-request timeouts are set on each request from the deployment.
          headersTimeout: 0,
          bodyTimeout: 0,
          pipelining: 1,
        });
        pools.set(key, pool);
      }
      return pool;
    },
    async close() {
      const all = [...pools.values()];
      pools.clear();
      await Promise.allSettled(all.map((p) => p.close()));
    },
  };
}
