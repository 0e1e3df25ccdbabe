// Turning a finished response into a stored record, and a stored record back
// into the conversation a `previous_response_id` request continues.
import { GatewayError } from '../../errors.js';
import { sha256Hex } from '../../sha256.js';
import type { ResponsesInputItem, ResponsesRequest } from './schema.js';
import type { StoredBodies, StoredResponse } from './store.js';
import type { ResponseObject } from './types.js';

/** This request's input as items: a string input is one user message. */
export function requestItems(request: ResponsesRequest): ResponsesInputItem[] {
  if (typeof request.input === 'string') return [{ type: 'message', role: 'user', content: request.input }];
  return request.input ?? [];
}

/**
 * The conversation a continuation starts from: the earlier response's whole
 * input, then its output as input items (what the model said and called).
 * A response stored as hashes holds no text to continue from.
 */
export function continueFrom(record: StoredResponse | undefined, id: string): ResponsesInputItem[] {
  if (!record) {
    throw new GatewayError('not_found', `No stored response "${id}" for this key's team: it never existed, was deleted, expired, or was not stored ("store": false).`, {
      param: 'previous_response_id',
    });
  }
  if (record.bodies === 'hash') {
    throw new GatewayError('invalid_request', `Response "${id}" was made in a lane whose audit rule keeps hashes only, so its conversation was not stored; send the earlier turns as input instead of previous_response_id.`, {
      param: 'previous_response_id',
    });
  }
  return [...record.inputItems, ...record.response.output.map(outputAsInput)];
}

function outputAsInput(item: ResponseObject['output'][number]): ResponsesInputItem {
  if (item.type === 'reasoning') return { ...item } as ResponsesInputItem;
  if (item.type === 'function_call') return { type: 'function_call', call_id: item.call_id, name: item.name, arguments: item.arguments, id: item.id, status: item.status };
  return { type: 'message', role: 'assistant', id: item.id, status: item.status, content: item.content.map((p) => ({ ...p })) };
}

export interface RecordInput {
  team: string;
  bodies: StoredBodies;
  /** The conversation before this request (continueFrom), or [] for a first turn. */
  previous: readonly ResponsesInputItem[];
  request: ResponsesRequest;
  response: ResponseObject;
}

export function buildStoredRecord(input: RecordInput): StoredResponse {
  const inputItems = [...input.previous, ...requestItems(input.request)];
  const base = { id: input.response.id, team: input.team, storedAt: Date.now() };
  if (input.bodies === 'full') return { ...base, bodies: 'full', inputItems, response: input.response };
  return {
    ...base,
    bodies: 'hash',
    inputHash: sha256Hex(JSON.stringify(inputItems)),
    outputHash: sha256Hex(JSON.stringify(input.response.output)),
    response: { ...input.response, output: [], instructions: null, metadata: {} },
  };
}
