import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startFakeAnthropic, type FakeAnthropic } from '../helpers/fake-anthropic.js';
import { startFakeOpenAI, type FakeOpenAI } from '../helpers/fake-openai.js';
import { APP_KEY, startTestGateway, type TestGateway } from '../helpers/gateway.js';

interface ErrorBody {
  error: { code: string; type: string; message: string };
}

// Whatever a provider sends back, the client gets an answer or a 502: an
// answer the gateway cannot read is the provider's fault, never a 500 (the
// gateway's own bugs). The default test config: no retries, no breaker.
describe('garbage answers', () => {
  let openai: FakeOpenAI;
  let anthropic: FakeAnthropic;
  let gw: TestGateway;
  before(async () => {
    [openai, anthropic] = await Promise.all([startFakeOpenAI(), startFakeAnthropic()]);
    gw = await startTestGateway({ openaiUrl: openai.url, anthropicUrl: anthropic.url });
  });
  after(async () => {
    await gw.close();
    await Promise.all([openai.close(), anthropic.close()]);
  });

  const post = (route: string, body: Record<string, unknown>) =>
    fetch(`${gw.baseURL}/${route}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${APP_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
  const messages = [{ role: 'user', content: 'hi' }];

  async function expect502(what: string, res: Response): Promise<void> {
    const text = await res.text();
    assert.equal(res.status, 502, `${what}: ${res.status} ${text.slice(0, 300)}`);
    assert.equal((JSON.parse(text) as ErrorBody).error.code, 'upstream_error', what);
  }

  it('garbage answers – every malformed chat answer is a 502 upstream_error, never a 500', async () => {
    const answers = [
      'null',
      '"a string"',
      '[]',
      '{"choices":"none"}',
      '{"choices":[null]}',
      '{"choices":[{"message":null}]}',
      '{"choices":[{"message":{"role":"assistant","content":{"text":"hi"}}}]}',
      '{"choices":[{"message":{"role":"assistant","content":null,"tool_calls":"call"}}]}',
      '{"choices":[{"message":{"role":"assistant","content":null,"tool_calls":[{"id":"c","type":"function","function":null}]}}]}',
      '{"choices":[{"message":{"role":"assistant","content":null,"tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":{"a":1}}}]}}]}',
      '{"choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1e400,"completion_tokens":1,"total_tokens":1}}',
      '{"choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],"usage":{"prompt_tokens":-5,"completion_tokens":1,"total_tokens":1}}',
      '{"choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}]',
    ];
    for (const answer of answers) {
      openai.script({ answer });
      await expect502(answer, await post('chat/completions', { model: 'gpt-fake', messages }));
    }
  });

  it('garbage answers – malformed stream events are a 502 before the first byte, never a 500', async () => {
    const streams = [
      ['null'],
      ['[1,2]'],
      ['{"choices":[null]}'],
      ['{"choices":[{"index":0,"delta":null}]}'],
      ['{"choices":[{"index":0,"delta":{"content":7}}]}'],
      ['{"choices":[{"index":0,"delta":{"tool_calls":[null]}}]}'],
      ['{"choices":[{"index":0,"delta":{"tool_calls":"x"}}]}'],
      ['{"choices":[{"index":"zero","delta":{"content":"hi"}}]}'],
    ];
    for (const events of streams) {
      openai.script({ events: [...events, '[DONE]'] });
      await expect502(events[0]!, await post('chat/completions', { model: 'gpt-fake', messages, stream: true }));
    }
  });

  it('garbage answers – malformed embeddings and Anthropic answers are a 502, never a 500', async () => {
    const embeddings = [
      '{"data":[null]}',
      '{"data":[{"object":"embedding","index":0,"embedding":"not base64 floats"}]}',
      '{"data":[{"object":"embedding","index":"first","embedding":[0.1]}]}',
      '{"data":[{"object":"embedding","index":0,"embedding":[0.1]}],"usage":{"prompt_tokens":"many"}}',
      '{"data":[]}',
    ];
    for (const answer of embeddings) {
      openai.script({ answer });
      await expect502(answer, await post('embeddings', { model: 'embed-fake', input: 'hi' }));
    }
    const messagesAnswers = [
      'null',
      '{"content":[null]}',
      '{"id":"m","content":[{"type":"text","text":"hi"}],"usage":{"input_tokens":1e400,"output_tokens":1}}',
      '{"id":"m","content":[{"type":"tool_use","id":"t","name":"f","input":"not an object"}],"stop_reason":"tool_use"}',
    ];
    for (const answer of messagesAnswers) {
      anthropic.script({ answer });
      await expect502(answer, await post('chat/completions', { model: 'claude-fake', messages }));
    }
    const messageStart = '{"type":"message_start","message":{"id":"m","usage":{"input_tokens":1e400,"output_tokens":1}}}';
    anthropic.script({ events: [messageStart] });
    await expect502(messageStart, await post('chat/completions', { model: 'claude-fake', messages, stream: true }));
  });
});
