// `lanegate batches list|show|cancel`: the operator's view of every team's
// batches, read from where the gateway keeps them (Redis, or the single
// instance's journal, read-only: the running gateway owns that file).
import { waitReady } from '../audit/cli.js';
import { loadConfig, resolveConfigPath } from '../config/load.js';
import { ConfigError } from '../config/load.js';
import { GatewayError } from '../errors.js';
import { queueDir } from '../queue/config.js';
import { openLocalWorkStore } from '../queue/local-store.js';
import { openRedisWorkStore } from '../queue/redis-store.js';
import type { WorkStore } from '../queue/types.js';
import { createCommandRedis } from '../services.js';
import type { RedisStore } from '../stores/redis.js';
import { listBatches, readBatch, requestCancel, showBatch } from './read.js';

export const BATCHES_USAGE = `  batches list [--team T] [--limit N] [--after ID]
                                 batches, newest first, one JSON line each (with Redis and no
                                 --team: the batches not yet final)
  batches show ID                one batch, as GET /v1/batches/{id} shows it
  batches cancel ID              cancel a batch in progress (with Redis; a single instance's
                                 batches are cancelled through POST /v1/batches/{id}/cancel)`;

function flag(argv: string[], name: string): string | undefined {
  const at = argv.indexOf(name);
  return at >= 0 ? argv[at + 1] : undefined;
}

export async function batchesCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub !== 'list' && sub !== 'show' && sub !== 'cancel') {
    console.error(BATCHES_USAGE);
    return 2;
  }
  let redis: RedisStore | undefined;
  let store: WorkStore | undefined;
  try {
    const loaded = await loadConfig(resolveConfigPath(rest, process.env));
    const config = loaded.config;
    if (config.redis.url) {
      redis = createCommandRedis(config.redis);
      // The connection fails fast rather than queueing commands: wait for it first.
      if (!(await waitReady(redis.ping))) {
        console.error('Redis is not reachable (redis.url); the batches are kept there.');
        return 1;
      }
      store = await openRedisWorkStore(redis, { claimIdleMs: config.queue.claim_idle_ms });
    } else {
      store = await openLocalWorkStore(queueDir(config.queue, config.audit.dir), { readOnly: true });
    }
    if (sub === 'list') {
      const limit = flag(rest, '--limit');
      const page = await listBatches(store, flag(rest, '--team'), { after: flag(rest, '--after'), limit: limit === undefined ? 100 : Number(limit) });
      for (const b of page.data) console.log(JSON.stringify(b));
      if (page.has_more) console.error(`more: --after ${page.last_id}`);
      return 0;
    }
    const id = rest.find((a) => !a.startsWith('--') && rest[rest.indexOf(a) - 1] !== '--config');
    if (!id) {
      console.error(BATCHES_USAGE);
      return 2;
    }
    const batch = await readBatch(store, undefined, id);
    if (sub === 'cancel') {
      if (store.kind === 'local') {
        console.error('This gateway runs as a single instance: its journal belongs to the running process. Cancel with POST /v1/batches/{id}/cancel and the team\'s key.');
        return 2;
      }
      // The gateways' sweep finalizes it once its running lines have their answers.
      console.log(JSON.stringify(await showBatch(store, await requestCancel(store, batch)), null, 2));
      return 0;
    }
    console.log(JSON.stringify(await showBatch(store, batch), null, 2));
    return 0;
  } catch (err) {
    if (err instanceof ConfigError || err instanceof GatewayError) {
      console.error(err.message);
      return 1;
    }
    throw err;
  } finally {
    await store?.close();
    await redis?.close();
  }
}
