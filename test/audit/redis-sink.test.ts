import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { purge } from '../../src/audit/read/retention.js';
import { createRedisClient } from '../../src/stores/redis.js';
import { createLogger } from '../../src/telemetry/logger.js';
import { ADMIN_KEY, startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';
import { AUDIT_POLICIES, auditTestConfig, metricSum, postJson, waitFor } from './fixtures.js';

const STREAM = 'audit-test:v1:audit:{green}';

describe('audit to Redis Streams', () => {
  let redis: TestRedis;
  let gw: TestGateway;
  let raw: Redis;
  before(async () => {
    redis = await startRedis();
    raw = new Redis(redis.url, { maxRetriesPerRequest: 1, retryStrategy: () => 100 });
    raw.on('error', () => {});
    gw = await startTestGateway({
      yaml: auditTestConfig({
        audit: 'audit:\n  sink: redis\n  dir: {{dir}}/audit\n  redis: { max_len: 1000 }\n',
        extra: `redis: { url: "${redis.url}", key_prefix: audit-test }`,
      }),
      files: { 'policies/lanes.yaml': AUDIT_POLICIES },
    });
  });
  after(async () => {
    await gw.close();
    raw.disconnect();
    await redis.stop();
  });

  async function ask(content: string): Promise<string> {
    const res = await postJson(gw, { model: 'fast', messages: [{ role: 'user', content }] });
    assert.equal(res.status, 200);
    await res.text();
    return res.headers.get('x-request-id')!;
  }

  const streamIds = async () => (await raw.xrange(STREAM, '-', '+')).map(([, fields]) => fields[fields.indexOf('id') + 1]);
  const admin = (p: string) => fetch(`${gw.url}${p}`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } });

  it('stream sink – one entry per record in the lane’s stream, readable by a consumer group and the admin API', async () => {
    const ids = [await ask('to the stream 1'), await ask('to the stream 2')];
    await waitFor('two entries', async () => ((await raw.xlen(STREAM)) >= 2 ? true : undefined));
    const [[, fields]] = (await raw.xrange(STREAM, '-', '+', 'COUNT', 1)) as [[string, string[]]];
    const entry = Object.fromEntries(fields.reduce<string[][]>((pairs, v, i) => (i % 2 ? pairs : [...pairs, [v, fields[i + 1]!]]), []));
    assert.deepEqual(Object.keys(entry), ['id', 'kind', 'time', 'record']);
    assert.equal(entry.id, ids[0]);
    assert.equal((JSON.parse(entry.record!) as { lane: { name: string } }).lane.name, 'green');

    await raw.xgroup('CREATE', STREAM, 'archiver', '0');
    const read = (await raw.xreadgroup('GROUP', 'archiver', 'a1', 'COUNT', 10, 'STREAMS', STREAM, '>')) as Array<[string, Array<[string, string[]]>]>;
    assert.equal(read[0]![1].length, 2, 'a consumer group reads every entry');

    const one = await admin(`/admin/audit/${ids[1]}`);
    assert.equal(one.status, 200);
    assert.equal(((await one.json()) as { id: string }).id, ids[1]);
    const list = (await (await admin('/admin/audit?lane=green&status=2xx&limit=10')).json()) as { data: Array<{ id: string }> };
    assert.deepEqual(list.data.map((r) => r.id), ids);
  });

  it('stream sink – Redis down: records spool to disk; back up: they catch up in order, then new ones follow', async () => {
    await redis.kill();
    const outage: string[] = [];
    for (let i = 0; i < 5; i++) outage.push(await ask(`during the outage ${i}`));
    await gw.gateway.audit.flush();
    assert.equal(await metricSum(gw, 'lanegate_audit_spool_records'), 5);
    assert.equal(await metricSum(gw, 'lanegate_audit_sink_up', { sink: 'redis' }), 0);
    const spool = path.join(gw.dir, 'audit-spool');
    assert.ok((await readdir(spool)).some((n) => n.endsWith('.spool')), 'records wait on local disk');
    assert.match(gw.logs(), /audit sink failing: records go to the local spool/);

    await redis.restart(); // a fresh, empty server on the same port
    await waitFor('the spool to drain', async () => ((await metricSum(gw, 'lanegate_audit_spool_records')) === 0 ? true : undefined), 20_000);
    const after = [await ask('after the outage 1'), await ask('after the outage 2')];
    await waitFor('every entry', async () => ((await raw.xlen(STREAM).catch(() => 0)) >= 7 ? true : undefined), 10_000);
    assert.deepEqual(await streamIds(), [...outage, ...after], 'nothing lost, nothing reordered');
    assert.equal(await metricSum(gw, 'lanegate_audit_dropped_total'), 0);
    assert.equal(await metricSum(gw, 'lanegate_audit_sink_up', { sink: 'redis' }), 1);
    assert.match(gw.logs(), /audit sink recovered/);
  });

  it('stream retention – XTRIM MINID drops what the cutoff expired, and the purge is an entry of the _purges stream', async () => {
    const store = createRedisClient({ url: redis.url, keyPrefix: 'audit-test', logger: createLogger({ level: 'silent' }) });
    try {
      await waitFor('redis', async () => ((await store.ping()) ? true : undefined));
      const before = await raw.xlen(STREAM);
      assert.ok(before > 0);
      const cutoff = Date.now() + 1000;
      const record = await purge({ sink: 'redis', dir: '', redis: store, logger: createLogger({ level: 'silent' }) }, { reason: 'manual', before: cutoff, cutoff: () => cutoff });
      assert.ok(record);
      assert.deepEqual(record.chains.map((c) => [c.chain, c.records]), [['green', before]]);
      assert.equal(await raw.xlen(STREAM), 0);
      const [[, fields]] = (await raw.xrange('audit-test:v1:audit:{_purges}', '-', '+')) as [[string, string[]]];
      assert.equal((JSON.parse(fields[fields.indexOf('record') + 1]!) as { kind: string }).kind, 'purge');
    } finally {
      await store.close();
    }
  });
});
