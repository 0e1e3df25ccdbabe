// The direct path for the one request agents send most: a single tools/call
// POST. The SDK's Server and transport would answer it the same way, but
// building them costs more than the call itself (a Server builds its own JSON
// Schema validator, the transport a web Request and stream bookkeeping), and
// the gateway is stateless, so they would be built and thrown away on every
// call. Here the message is checked with the SDK's own schemas (the JSON-RPC
// envelope, CallToolRequestSchema, CallToolResultSchema, as the SDK's Server
// does for tools/call) and answered as the SDK answers it: 200 with the
// JSON-RPC response, errors as JSON-RPC errors. Anything else (batches,
// initialize, lists, task-augmented calls, an Accept or protocol version the
// transport would refuse) is left to the SDK (session.ts).
import {
  CallToolRequestSchema,
  CallToolResultSchema,
  ErrorCode,
  isJSONRPCRequest,
  SUPPORTED_PROTOCOL_VERSIONS,
  type JSONRPCMessage,
  type JSONRPCRequest,
} from '@modelcontextprotocol/sdk/types.js';
import { answerToolCall, type McpCaller, type McpSessionDeps } from './session.js';

/** The tools/call request this path answers, or undefined when the SDK must. */
export function directToolCall(body: unknown, headers: { accept?: string; protocolVersion?: string }): JSONRPCRequest | undefined {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return undefined;
  if ((body as { method?: unknown }).method !== 'tools/call') return undefined;
  // The transport refuses these (406, 400) with its own wording: let it.
  const accept = headers.accept ?? '';
  if (!accept.includes('application/json') || !accept.includes('text/event-stream')) return undefined;
  if (headers.protocolVersion !== undefined && !SUPPORTED_PROTOCOL_VERSIONS.includes(headers.protocolVersion)) return undefined;
  if (!isJSONRPCRequest(body)) return undefined;
  // Task-augmented calls need the task capability, which the SDK refuses for this server.
  const params = body.params as { task?: unknown } | undefined;
  if (params?.task !== undefined) return undefined;
  return body;
}

/** Answers a tools/call the way the SDK's Server would: the JSON-RPC response (result or error). */
export async function answerToolCallRequest(deps: McpSessionDeps, caller: McpCaller, request: JSONRPCRequest): Promise<JSONRPCMessage> {
  const id = request.id;
  const parsed = CallToolRequestSchema.safeParse(request);
  if (!parsed.success) {
    return { jsonrpc: '2.0', id, error: { code: ErrorCode.InvalidParams, message: `Invalid tools/call request: ${parsed.error.message}` } };
  }
  try {
    const result = await answerToolCall(deps, caller, parsed.data.params, id, caller.signal);
    const checked = CallToolResultSchema.safeParse(result);
    if (!checked.success) {
      return { jsonrpc: '2.0', id, error: { code: ErrorCode.InvalidParams, message: `Invalid tools/call result: ${checked.error.message}` } };
    }
    return { jsonrpc: '2.0', id, result: checked.data };
  } catch (err) {
    // As the SDK's Protocol answers a handler's throw: its code when it has one, its message.
    const e = err as { code?: unknown; message?: unknown; data?: unknown };
    const code = typeof e.code === 'number' && Number.isSafeInteger(e.code) ? e.code : ErrorCode.InternalError;
    const message = typeof e.message === 'string' ? e.message : 'Internal error';
    return { jsonrpc: '2.0', id, error: { code, message, ...(e.data !== undefined ? { data: e.data } : {}) } };
  }
}
