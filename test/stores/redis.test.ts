import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, it, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Counter, Gauge, Registry } from 'prom-client';
import { createRedisClient, type RedisMetrics, type RedisStore } from '../../src/stores/redis.js';
import { createLogger } from '../../src/telemetry/logger.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';

interface Setup {
  redis: TestRedis;
  store: RedisStore;
  metrics: RedisMetrics;
  /** Log lines with this `msg`. */
  logged(msg: string): Array<Record<string, unknown>>;
}

/** A private redis-server and a store connected to it, both torn down after the test. */
async function setup(t: TestContext): Promise<Setup> {
  const redis = await startRedis();
  const lines: Array<Record<string, unknown>> = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString().split('\n')) if (line) lines.push(JSON.parse(line) as Record<string, unknown>);
      callback();
    },
  });
  const registry = new Registry();
  const metrics: RedisMetrics = {
    redisUp: new Gauge({ name: 'redis_up', help: 'up', labelNames: ['connection'], registers: [registry] }),
    redisConnectionErrors: new Counter({ name: 'redis_errors', help: 'errors', labelNames: ['connection'], registers: [registry] }),
  };
  const store = createRedisClient({ url: redis.url, keyPrefix: 'lgtest', logger: createLogger({ level: 'info', destination }), metrics });
  t.after(async () => {
    await store.close();
    await redis.stop();
  });
  await waitFor('the first connection', () => store.isReady());
  return { redis, store, metrics, logged: (msg) => lines.filter((line) => line.msg === msg) };
}

async function waitFor(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(25);
  }
}

async function metricValue(metric: Gauge<'connection'> | Counter<'connection'>, connection: string): Promise<number> {
  const { values } = await metric.get();
  return values.find((v) => v.labels.connection === connection)?.value ?? 0;
}

describe('redis store', () => {
  it('redis store – key() namespaces and versions every key', async (t) => {
    const { store } = await setup(t);
    assert.equal(store.key('budget', 'team-a', '2025-01'), 'lgtest:v1:budget:team-a:2025-01');
    assert.equal(store.key('cache'), 'lgtest:v1:cache');
  });

  it('redis store – bad options are refused with the fix, never echoing the password', () => {
    const logger = createLogger({ level: 'silent' });
    assert.throws(() => createRedisClient({ url: 'http://:hunter2@localhost:6379', keyPrefix: 'lg', logger }), (err: Error) => {
      assert.match(err.message, /redis:\/\/ or rediss:\/\//);
      assert.ok(!err.message.includes('hunter2'));
      return true;
    });
    assert.throws(() => createRedisClient({ url: 'not a url :hunter2', keyPrefix: 'lg', logger }), (err: Error) => {
      assert.match(err.message, /not a valid URL/);
      assert.ok(!err.message.includes('hunter2'));
      return true;
    });
    assert.throws(() => createRedisClient({ url: 'redis://127.0.0.1:1', keyPrefix: '', logger }), /keyPrefix/);
  });

  it('redis store – set/get round-trips and ping answers true', async (t) => {
    const { store, metrics, logged } = await setup(t);
    const key = store.key('greeting');
    assert.equal(await store.client.set(key, 'hello'), 'OK');
    assert.equal(await store.client.get(key), 'hello');
    assert.equal(await store.ping(), true);
    assert.equal(await metricValue(metrics.redisUp, 'commands'), 1);
    assert.equal(logged('redis connected').length, 1);
  });

  it('redis store – a killed server makes commands reject and ping false, logged once per burst', async (t) => {
    const { redis, store, metrics, logged } = await setup(t);
    // Our listener is what keeps ioredis from reporting the errors as unhandled.
    assert.ok(store.client.listenerCount('error') > 0);

    await redis.kill();
    await assert.rejects(store.client.set(store.key('k'), 'v'));
    assert.equal(await store.ping(), false);
    assert.equal(store.isReady(), false);

    // Several failed reconnects make a burst; the log still holds one line.
    await waitFor('three failed reconnects', async () => (await metricValue(metrics.redisConnectionErrors, 'commands')) >= 3);
    await assert.rejects(store.client.get(store.key('k')));
    assert.equal(logged('redis unavailable').length, 1);
    assert.equal(await metricValue(metrics.redisUp, 'commands'), 0);
  });

  it('redis store – reconnects by itself once the server is back', async (t) => {
    const { redis, store, logged } = await setup(t);
    await store.client.set(store.key('before'), '1');

    await redis.kill();
    await waitFor('the outage to be noticed', async () => !(await store.ping()));
    await redis.restart();
    await waitFor('the reconnect', () => store.isReady());

    assert.equal(await store.ping(), true);
    assert.equal(await store.client.get(store.key('before')), null, 'the restarted server starts empty');
    assert.equal(await store.client.set(store.key('after'), '2'), 'OK');
    assert.equal(await store.client.get(store.key('after')), '2');
    assert.equal(logged('redis reconnected').length, 1);
  });

  it('redis store – subscriber() is one shared connection that receives published messages', async (t) => {
    const { store } = await setup(t);
    const sub = store.subscriber();
    assert.equal(store.subscriber(), sub);
    const channel = store.key('events');
    const received = new Promise<[string, string]>((resolve) => sub.once('message', (ch: string, message: string) => resolve([ch, message])));
    await sub.subscribe(channel);
    assert.equal(await store.client.publish(channel, 'config-reloaded'), 1);
    assert.deepEqual(await received, [channel, 'config-reloaded']);
  });

  it('redis store – subscriptions are renewed after a restart; SUBSCRIBE while down rejects', async (t) => {
    const { redis, store } = await setup(t);
    const sub = store.subscriber();
    const channel = store.key('events');
    await sub.subscribe(channel);

    await redis.kill();
    await waitFor('the subscriber to notice', () => sub.status !== 'ready');
    await assert.rejects(sub.subscribe(store.key('other')));
    await redis.restart();

    const received = new Promise<string>((resolve) => sub.once('message', (_ch: string, message: string) => resolve(message)));
    // publish answers how many subscribers got it: 1 once the subscription is back.
    await waitFor('the subscription to be renewed', async () => store.isReady() && (await store.client.publish(channel, 'back')) === 1);
    assert.equal(await received, 'back');
  });

  it('redis store – close() quits both connections, twice is fine, and the store then refuses work', async (t) => {
    const { store } = await setup(t);
    const sub = store.subscriber();
    await waitFor('the subscriber', () => sub.status === 'ready');

    await store.close();
    await store.close();
    assert.equal(store.client.status, 'end');
    assert.equal(sub.status, 'end');
    assert.equal(store.isReady(), false);
    assert.equal(await store.ping(), false);
    assert.throws(() => store.subscriber(), /closed/);
  });

  it('redis store – close() resolves while the server is down', async (t) => {
    const { redis, store, logged } = await setup(t);
    store.subscriber();
    await redis.kill();
    await waitFor('the outage to be noticed', () => !store.isReady());
    await store.close();
    const before = logged('redis unavailable').length;
    await sleep(300); // long enough for a reconnect attempt, had close() not stopped them
    assert.equal(logged('redis unavailable').length, before);
    assert.notEqual(store.client.status, 'ready');
  });
});
