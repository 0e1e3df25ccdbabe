// Shares circuit-breaker state across replicas through Redis: a replica whose
// breaker opens publishes it, and the others open theirs too, so an outage
// costs one timeout per fleet rather than per replica. The open state is also
// kept under a key with the cool-down as TTL, for replicas that start later.
//
// A 429 cool-down travels the same way on a channel of its own: a provider's
// rate limit belongs to the gateway's key, which every replica shares, so a
// 429 one replica saw is one the others would get next. It is not kept under
// a key: it lasts seconds, and a replica that starts later learns it from its
// own first 429.
import { randomUUID } from 'node:crypto';
import type { RedisStore } from '../stores/redis.js';
import type { Logger } from '../telemetry/logger.js';
import type { BreakerState } from './breaker.js';
import type { HealthRegistry } from './health.js';

interface BreakerMessage {
  from: string;
  id: string;
  state: BreakerState;
  openUntil: number;
}

interface CoolDownMessage {
  from: string;
  id: string;
  until: number;
}

export interface BreakerSync {
  publish(id: string, state: BreakerState, openUntil: number): void;
  publishCoolDown(id: string, until: number): void;
  close(): Promise<void>;
}

export async function createBreakerSync(store: RedisStore, health: HealthRegistry, logger: Logger): Promise<BreakerSync> {
  const instance = randomUUID();
  const channel = store.key('breaker', 'events');
  const coolDowns = store.key('breaker', 'cooldowns');
  const keyFor = (id: string) => store.key('breaker', 'open', encodeURIComponent(id));
  const subscriber = store.subscriber();

  subscriber.on('message', (ch: string, text: string) => {
    if (ch === coolDowns) {
      try {
        const m = JSON.parse(text) as CoolDownMessage;
        if (m.from !== instance && typeof m.id === 'string' && Number(m.until) > Date.now()) health.applyRemoteCoolDown(m.id, Number(m.until));
      } catch {
        // a malformed message from a foreign writer: ignore it
      }
      return;
    }
    if (ch !== channel) return;
    try {
      const m = JSON.parse(text) as BreakerMessage;
      if (m.from === instance || typeof m.id !== 'string') return;
      health.applyRemote(m.id, m.state, Number(m.openUntil) || 0);
    } catch {
      // a malformed message from a foreign writer: ignore it
    }
  });
  await subscriber.subscribe(channel, coolDowns).catch((err: unknown) => logger.warn({ err: String(err) }, 'breaker sync: cannot subscribe yet; will retry on reconnect'));

  // Breakers opened before this replica started.
  try {
    const prefix = store.key('breaker', 'open', '');
    let cursor = '0';
    do {
      const [next, keys] = await store.client.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 100);
      cursor = next;
      for (const key of keys) {
        const until = Number(await store.client.get(key));
        if (until > Date.now()) health.applyRemote(decodeURIComponent(key.slice(prefix.length)), 'open', until);
      }
    } while (cursor !== '0');
  } catch {
    // Redis down at start: local breakers still work.
  }

  return {
    publish(id, state, openUntil) {
      const message: BreakerMessage = { from: instance, id, state, openUntil };
      const ttl = openUntil - Date.now();
      const pipeline = store.client.pipeline();
      if (state === 'open' && ttl > 0) pipeline.set(keyFor(id), String(openUntil), 'PX', ttl);
      if (state === 'closed') pipeline.del(keyFor(id));
      pipeline.publish(channel, JSON.stringify(message));
      pipeline.exec().catch(() => {
        // Redis down: the breaker still works locally.
      });
    },
    publishCoolDown(id, until) {
      const message: CoolDownMessage = { from: instance, id, until };
      store.client.publish(coolDowns, JSON.stringify(message)).catch(() => {
        // Redis down: the cool-down still works locally.
      });
    },
    async close() {
      await subscriber.unsubscribe(channel, coolDowns).catch(() => {});
    },
  };
}
