// The OpenAI Agents SDK (@openai/agents) running an agent with a function
// tool to completion against the gateway: the Responses API as a real agent
// framework speaks it, over two model turns.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Agent, run, setDefaultOpenAIClient, setTracingDisabled, tool } from '@openai/agents';
import OpenAI from 'openai';
import { z } from 'zod';
import { startFakeOpenAI, type FakeOpenAI } from '../helpers/fake-openai.js';
import { APP_KEY, startTestGateway, type TestGateway } from '../helpers/gateway.js';

describe('OpenAI Agents SDK through the gateway', () => {
  let upstream: FakeOpenAI;
  let gw: TestGateway;
  before(async () => {
    upstream = await startFakeOpenAI();
    gw = await startTestGateway({ openaiUrl: upstream.url });
    // No trace export to OpenAI from a test, and the SDK's client points at the gateway.
    setTracingDisabled(true);
    // @openai/agents types the client with the openai version it bundles; the instance is the same API.
    setDefaultOpenAIClient(new OpenAI({ apiKey: APP_KEY, baseURL: gw.baseURL, maxRetries: 0 }) as unknown as Parameters<typeof setDefaultOpenAIClient>[0]);
  });
  after(async () => {
    await gw.close();
    await upstream.close();
  });

  it('agents – runs a function tool and finishes with the model\'s answer', async () => {
    const cities: string[] = [];
    const weather = tool({
      name: 'get_weather',
      description: 'The weather in a city.',
      parameters: z.object({ city: z.string() }),
      execute: async ({ city }) => {
        cities.push(city);
        return `sunny in ${city}`;
      },
    });
    const agent = new Agent({ name: 'weather', instructions: 'Answer with the weather.', model: 'gpt-fake', tools: [weather] });
    const calls = upstream.calls.length;
    const result = await run(agent, 'use tool get_weather args:{"city":"Paris"}');
    assert.deepEqual(cities, ['Paris']);
    assert.equal(result.finalOutput, 'Hello from fake-openai: sunny in Paris');
    const sent = upstream.calls.slice(calls);
    assert.equal(sent.length, 2, 'two model turns');
    assert.ok(sent.every((c) => c.path === '/v1/chat/completions'));
    const records = (await gw.auditRecords()).filter((r) => r.endpoint === 'responses' && r.client === 'openai-agents');
    assert.ok(records.length >= 2, 'both turns audited as the Agents SDK');
  });
});
