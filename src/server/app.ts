// The HTTP surface. Only this folder knows hono. API routes write straight to
// Node's response (RESPONSE_ALREADY_SENT) so the hot path builds no web
// Request/Response objects.
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { getRequestListener, type HttpBindings } from '@hono/node-server';
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response';
import { Hono, type Context } from 'hono';
import { authenticateKey } from '../auth/keys.js';
import { GatewayError, toGatewayError } from '../errors.js';
import { chatPipeline, countTokensPipeline, embeddingsPipeline, messagesPipeline, responsesPipeline } from '../pipeline/index.js';
import type { Pipeline } from '../pipeline/stage.js';
import { mountAdmin } from './admin.js';
import { mountConsole } from './console.js';
import { mountBatches } from './batches.js';
import { mountMcp } from './mcp.js';
import { refuseAmbiguousHeaders } from './edge-headers.js';
import { errorHeaders } from './reply.js';
import { handleApi } from './handle.js';
import { mountFiles } from './files.js';
import { mountResponses } from './responses.js';
import type { GatewayState } from './state.js';

type Env = { Bindings: HttpBindings };

/**
 * The server's request listener. The two hot API routes skip the router and
 * go straight to the pipeline (a map lookup on the path); everything else
 * (models, health, metrics, admin, errors) goes through hono.
 */
export function createRequestListener(state: GatewayState): (req: IncomingMessage, res: ServerResponse) => void {
  const hono = getRequestListener(createApp(state).fetch);
  const chat = chatPipeline;
  const embeddings = embeddingsPipeline;
  const hot = new Map([
    ['/v1/chat/completions', chat],
    ['/chat/completions', chat],
    ['/v1/embeddings', embeddings],
    ['/embeddings', embeddings],
    ['/v1/responses', responsesPipeline],
    ['/responses', responsesPipeline],
    // Anthropic's clients append /v1/messages to their base URL.
    ['/v1/messages', messagesPipeline],
    ['/v1/messages/count_tokens', countTokensPipeline],
  ]);
  return (req, res) => {
    // Every answer is for one key at one moment (completions, usage, budgets,
    // approvals); a shared cache or proxy between app and gateway must not
    // keep it, nor serve it to anyone else.
    res.setHeader('cache-control', 'no-store');
    if (req.method === 'POST') {
      const url = req.url ?? '';
      const q = url.indexOf('?');
      const pipeline = hot.get(q < 0 ? url : url.slice(0, q));
      if (pipeline) {
        handleApi(state, req, res, pipeline).catch((err: unknown) => {
          state.logger.error({ err }, 'internal error outside the pipeline');
          if (!res.headersSent) res.destroy();
        });
        return;
      }
    }
    void hono(req, res);
  };
}

export function createApp(state: GatewayState): Hono<Env> {
  const app = new Hono<Env>();
  app.use(async (c, next) => {
    refuseAmbiguousHeaders(c.env.incoming);
    await next();
    // Every answer carries an id to quote in a bug report or find in the logs,
    // health checks and admin calls too; errors bring their own (errorResponse).
    if (!c.res.headers.has('x-request-id')) c.res.headers.set('x-request-id', requestId());
  });

  const api = (pipeline: Pipeline) => async (c: Context<Env>) => {
    await handleApi(state, c.env.incoming, c.env.outgoing, pipeline);
    return RESPONSE_ALREADY_SENT;
  };
  // The models a key may call: configured models and routes (like `auto`, names apps call too).
  const callable = (c: Context<Env>) => {
    const config = state.config();
    const key = authenticateKey(config, c.env.incoming.headers);
    const created = Math.floor(config.loadedAt.getTime() / 1000);
    const names = [...config.models.keys(), ...config.routes.keys()];
    return names.filter((n) => !key.models || key.models.has(n)).map((id) => ({ id, object: 'model' as const, created, owned_by: 'lanegate' }));
  };
  for (const prefix of ['/v1', '']) {
    app.post(`${prefix}/chat/completions`, api(chatPipeline));
    app.post(`${prefix}/embeddings`, api(embeddingsPipeline));
    app.post(`${prefix}/responses`, api(responsesPipeline));
    mountResponses(app, state, prefix);
    mountFiles(app, state, prefix);
    mountBatches(app, state, prefix);
    app.get(`${prefix}/models`, (c) => c.json({ object: 'list', data: callable(c) }));
    app.get(`${prefix}/models/:id{.+}`, (c) => {
      const id = c.req.param('id');
      const model = callable(c).find((m) => m.id === id);
      // A model the key may not call reads as absent, as OpenAI answers for one it does not serve.
      if (!model) throw new GatewayError('model_not_found', `The model "${id}" does not exist or your key cannot use it.`, { param: 'model' });
      return c.json(model);
    });
    for (const path of ['/chat/completions', '/embeddings', '/responses']) {
      app.all(`${prefix}${path}`, () => {
        throw new GatewayError('method_not_allowed', `Use POST for ${prefix}${path}.`);
      });
    }
  }

  for (const path of ['/v1/messages', '/v1/messages/count_tokens']) {
    app.all(path, () => {
      throw new GatewayError('method_not_allowed', `Use POST for ${path}.`);
    });
  }

  app.get('/healthz', (c) => c.json({ status: 'ok' }));
  app.get('/readyz', async (c) => {
    if (state.shuttingDown) return c.json({ status: 'shutting_down' }, 503);
    const redis = state.services.redis;
    const stores = { redis: redis ? ((await redis.ping()) ? 'ok' : 'unreachable') : 'not_configured' };
    const ready = stores.redis !== 'unreachable';
    return c.json({ status: ready ? 'ready' : 'not_ready', stores, config_loaded_at: state.config().loadedAt.toISOString() }, ready ? 200 : 503);
  });
  app.get('/metrics', async (c) => {
    const text = await state.metrics.registry.metrics();
    return c.body(text, 200, { 'content-type': state.metrics.registry.contentType });
  });

  mountAdmin(app, state);
  mountMcp(app, state);
  mountConsole(app, state);

  app.notFound(() => {
    const err = new GatewayError('not_found', 'Unknown path. The API lives under /v1 (e.g. POST /v1/chat/completions).');
    return errorResponse(err);
  });
  app.onError((err) => {
    const error = toGatewayError(err);
    if (error.code === 'internal_error') state.logger.error({ err }, 'internal error');
    return errorResponse(error);
  });
  return app;
}

function requestId(): string {
  return randomUUID();
}

function errorResponse(err: GatewayError): Response {
  const headers = errorHeaders(err, requestId());
  return new Response(JSON.stringify(err.toJSON()), {
    status: err.status,
    headers: { ...Object.fromEntries(Object.entries(headers).map(([k, v]) => [k, String(v)])), 'content-type': 'application/json' },
  });
}
