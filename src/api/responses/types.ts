// The Responses API objects the gateway sends: the Response, its output items
// and the stream events. Shapes follow OpenAI's API reference; the tests check
// them against the `openai` SDK's own types and feed them to its stream helper.

export interface OutputText {
  type: 'output_text';
  text: string;
  annotations: unknown[];
  logprobs?: unknown[];
}

export interface OutputRefusal {
  type: 'refusal';
  refusal: string;
}

export type ItemStatus = 'in_progress' | 'completed' | 'incomplete';

export interface OutputMessage {
  type: 'message';
  id: string;
  status: ItemStatus;
  role: 'assistant';
  content: Array<OutputText | OutputRefusal>;
}

export interface FunctionCallItem {
  type: 'function_call';
  id: string;
  call_id: string;
  name: string;
  arguments: string;
  status: ItemStatus;
}

/** A reasoning item from an upstream that speaks the Responses API, passed on as it came (summary, encrypted state). */
export interface ReasoningItem {
  type: 'reasoning';
  id: string;
  [k: string]: unknown;
}

export type OutputItem = OutputMessage | FunctionCallItem | ReasoningItem;

export interface ResponsesUsage {
  input_tokens: number;
  input_tokens_details: { cached_tokens: number; cache_write_tokens: number };
  output_tokens: number;
  output_tokens_details: { reasoning_tokens: number };
  total_tokens: number;
}

/** `queued` and `cancelled`: background responses only (queue/background.ts). */
export type ResponseStatus = 'completed' | 'failed' | 'in_progress' | 'incomplete' | 'queued' | 'cancelled';

export interface ResponseObject {
  id: string;
  object: 'response';
  created_at: number;
  completed_at?: number | null;
  status: ResponseStatus;
  background: boolean;
  error: { code: string; message: string } | null;
  incomplete_details: { reason: 'max_output_tokens' | 'content_filter' } | null;
  instructions: string | null;
  max_output_tokens: number | null;
  model: string;
  output: OutputItem[];
  parallel_tool_calls: boolean;
  previous_response_id: string | null;
  reasoning: { effort: string | null; summary: string | null };
  store: boolean;
  temperature: number | null;
  text: { format: Record<string, unknown> & { type: string } };
  tool_choice: unknown;
  tools: unknown[];
  top_p: number | null;
  truncation: 'auto' | 'disabled';
  usage?: ResponsesUsage;
  user?: string;
  metadata: Record<string, string>;
}

interface Sequenced {
  sequence_number: number;
}

export type ResponseStreamEvent = Sequenced &
  (
    | { type: 'response.created' | 'response.in_progress' | 'response.completed' | 'response.failed' | 'response.incomplete'; response: ResponseObject }
    | { type: 'response.output_item.added' | 'response.output_item.done'; output_index: number; item: OutputItem }
    | { type: 'response.content_part.added' | 'response.content_part.done'; item_id: string; output_index: number; content_index: number; part: OutputText | OutputRefusal }
    | { type: 'response.output_text.delta'; item_id: string; output_index: number; content_index: number; delta: string; logprobs: unknown[] }
    | { type: 'response.output_text.done'; item_id: string; output_index: number; content_index: number; text: string; logprobs: unknown[] }
    | { type: 'response.refusal.delta'; item_id: string; output_index: number; content_index: number; delta: string }
    | { type: 'response.refusal.done'; item_id: string; output_index: number; content_index: number; refusal: string }
    | { type: 'response.function_call_arguments.delta'; item_id: string; output_index: number; delta: string }
    | { type: 'response.function_call_arguments.done'; item_id: string; output_index: number; name: string; arguments: string }
    | { type: 'error'; code: string | null; message: string; param: string | null }
  );

/** One event as SSE: the event name repeats the type, as OpenAI sends it. */
export function encodeResponsesEvent(event: ResponseStreamEvent): string {
  return `event: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`;
}
