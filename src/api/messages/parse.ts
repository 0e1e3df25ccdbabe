// Body → validated Messages request. Errors are GatewayErrors naming the
// field; the Messages endpoint renders them with errors.ts.
import { validateBody } from '../validate.js';
import { countTokensRequestSchema, messagesRequestSchema, type CountTokensRequest, type MessagesRequest } from './schema.js';

export function parseMessagesRequest(body: unknown): MessagesRequest {
  return validateBody(messagesRequestSchema, body);
}

export function parseCountTokensRequest(body: unknown): CountTokensRequest {
  return validateBody(countTokensRequestSchema, body);
}
