import assert from 'node:assert/strict';
import { once } from 'node:events';
import { after, before, describe, test } from 'node:test';
import { GatewayError } from '../../src/errors.js';
import { buildStoredRecord, continueFrom } from '../../src/api/responses/conversation.js';
import { parseResponsesRequest } from '../../src/api/responses/parse.js';
import { chatToResponse } from '../../src/api/responses/reply.js';
import { responsesToChat } from '../../src/api/responses/to-chat.js';
import {
  createMemoryResponsesStore,
  createRedisResponsesStore,
  storedBodies,
  storedResponseTtlMs,
  type ResponsesStore,
} from '../../src/api/responses/store.js';
import { createRedisClient, type RedisStore } from '../../src/stores/redis.js';
import { memoryLogger } from '../helpers/logger.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';

const SECRET = 'my card is 4111 1111 1111 1111';

function turn(input: string, previous: Parameters<typeof buildStoredRecord>[0]['previous'] = [], bodies: 'full' | 'hash' = 'full') {
  const request = parseResponsesRequest({ model: 'm', input, instructions: 'Be brief.', previous_response_id: previous.length ? 'resp_prev' : undefined });
  const response = chatToResponse(
    { id: 'c', object: 'chat.completion', created: 1, model: 'm', choices: [{ index: 0, message: { role: 'assistant', content: `echo: ${input}` }, finish_reason: 'stop' }] },
    { id: `resp_${Math.random().toString(16).slice(2)}`, createdAt: 1, model: 'm', request },
  );
  return { request, response, record: buildStoredRecord({ team: 'alpha', bodies, previous, request, response }) };
}

function behaves(name: string, make: () => ResponsesStore) {
  describe(`${name} responses store`, () => {
    test('put, get, delete – scoped to the team', async () => {
      const store = make();
      const { record } = turn('hello');
      await store.put(record, 60_000);
      assert.deepEqual(await store.get('alpha', record.id), record);
      assert.equal(await store.get('beta', record.id), undefined, 'another team reads nothing');
      assert.equal(await store.delete('beta', record.id), false, 'nor deletes it');
      assert.ok(await store.get('alpha', record.id));
      assert.equal(await store.delete('alpha', record.id), true);
      assert.equal(await store.get('alpha', record.id), undefined);
      assert.equal(await store.delete('alpha', record.id), false);
    });

    test('a continuation carries the earlier turns and the answers, without the instructions', async () => {
      const store = make();
      const first = turn('first question');
      await store.put(first.record, 60_000);
      const previous = continueFrom(await store.get('alpha', first.record.id), first.record.id);
      const second = turn('second question', previous);
      await store.put(second.record, 60_000);
      const history = continueFrom(await store.get('alpha', second.record.id), second.record.id);
      const t = responsesToChat(parseResponsesRequest({ model: 'm', input: 'third', instructions: 'New rules.' }), { previous: history });
      assert.ok(t.ok);
      assert.deepEqual(
        t.chat.messages.map((m) => [m.role, typeof m.content === 'string' ? m.content : (m.content as Array<{ text: string }>).map((p) => p.text).join('')]),
        [
          ['system', 'New rules.'],
          ['user', 'first question'],
          ['assistant', 'echo: first question'],
          ['user', 'second question'],
          ['assistant', 'echo: second question'],
          ['user', 'third'],
        ],
      );
    });

    test('hash-only records hold no text and refuse a continuation with a 400', async () => {
      const store = make();
      const { record } = turn(SECRET, [], 'hash');
      await store.put(record, 60_000);
      const got = await store.get('alpha', record.id);
      assert.ok(got);
      assert.equal(JSON.stringify(got).includes('4111'), false);
      assert.equal(got.bodies, 'hash');
      assert.match(got.bodies === 'hash' ? got.inputHash : '', /^[0-9a-f]{64}$/);
      assert.throws(() => continueFrom(got, record.id), (err: unknown) => err instanceof GatewayError && err.status === 400 && err.param === 'previous_response_id');
      assert.throws(() => continueFrom(undefined, 'resp_x'), (err: unknown) => err instanceof GatewayError && err.status === 404);
    });

    test('a record past its TTL is gone', async () => {
      const store = make();
      const { record } = turn('short-lived');
      await store.put(record, 1);
      await new Promise((r) => setTimeout(r, 20));
      assert.equal(await store.get('alpha', record.id), undefined);
    });
  });
}

behaves('memory', () => createMemoryResponsesStore());

let redis: TestRedis;
let client: RedisStore;
before(async () => {
  redis = await startRedis();
  client = createRedisClient({ url: redis.url, keyPrefix: 'lgtest', logger: memoryLogger().logger });
  // Commands fail fast until the connection is up (stores/redis.ts).
  if (!client.isReady()) await once(client.client, 'ready');
});
after(async () => {
  await client.close();
  await redis.stop();
});
behaves('redis', () => createRedisResponsesStore(client));

test('redis responses store – the key expires with the lane retention, and a down Redis is a 503', async () => {
  const store = createRedisResponsesStore(client);
  const { record } = turn('ttl');
  const ttl = storedResponseTtlMs({ audit: { retention_days: 7 } });
  assert.equal(ttl, 7 * 86_400_000);
  assert.equal(storedResponseTtlMs({ audit: { retention_days: 90 } }), 30 * 86_400_000, 'never longer than OpenAI keeps them');
  await store.put(record, ttl);
  const keys = await client.client.keys(`lgtest:*responses*${record.id}`);
  assert.equal(keys.length, 1);
  const pttl = await client.client.pttl(keys[0]!);
  assert.ok(pttl > ttl - 60_000 && pttl <= ttl, `pttl ${pttl}`);
  assert.equal(storedBodies({ audit: { bodies: 'hash' } }), 'hash');
  assert.equal(storedBodies({ audit: { bodies: 'redacted' } }), 'full');
  await client.client.del(keys[0]!);

  await redis.kill();
  await assert.rejects(store.get('alpha', record.id), (err: unknown) => err instanceof GatewayError && err.status === 503);
});

test('memory responses store – bounded: the oldest records go first', async () => {
  const store = createMemoryResponsesStore({ maxEntries: 2 });
  const records = [turn('a').record, turn('b').record, turn('c').record];
  for (const r of records) await store.put(r, 60_000);
  assert.equal(await store.get('alpha', records[0]!.id), undefined);
  assert.ok(await store.get('alpha', records[2]!.id));
});
