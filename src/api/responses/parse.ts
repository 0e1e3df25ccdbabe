// Body → validated Responses request, with the chat ingress's error format
// (api/validate.ts), so every ingress names the offending field the same way.
import { validateBody } from '../validate.js';
import { responsesRequestSchema, type ResponsesRequest } from './schema.js';

export function parseResponsesRequest(body: unknown): ResponsesRequest {
  return validateBody(responsesRequestSchema, body);
}
