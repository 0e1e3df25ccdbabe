// Resolves the model name an app asked for to a configured model and its
// candidate deployments.
import { GatewayError } from '../errors.js';
import type { RequestContext } from '../pipeline/context.js';

export function resolveModel(ctx: RequestContext): void {
  const name = ctx.route?.model ?? ctx.requestedModel!;
  // A route's rules pick the model; the key was checked against the route.
  const viaRoute = ctx.route !== undefined && ctx.route.name !== name;
  const allowedByKey = viaRoute || !ctx.key?.models || ctx.key.models.has(name);
  const model = ctx.config.models.get(name);
  if (!model || !allowedByKey) {
    const providers = allowedByKey ? ctx.config.unavailableModels.get(name) : undefined;
    if (providers) {
      throw new GatewayError(
        'model_not_found',
        `The model "${name}" is configured, but none of its providers (${providers.join(', ')}) is enabled on this gateway.`,
        { param: 'model' },
      );
    }
    throw new GatewayError(
      'model_not_found',
      `The model "${name}" does not exist or your key cannot use it. GET /v1/models lists the models available to your key.`,
      { param: 'model' },
    );
  }
  const wanted = ctx.endpoint === 'embeddings' ? 'embedding' : 'chat';
  if (model.type !== wanted) {
    const use = model.type === 'embedding' ? '/v1/embeddings' : '/v1/chat/completions';
    throw new GatewayError('invalid_request', `The model "${name}" is a ${model.type} model; call it through ${use}.`, { param: 'model' });
  }
  ctx.model = model;
  ctx.candidates = model.deployments;
}
