// The Responses API request (POST /v1/responses) as the gateway checks it.
// Like the chat schema, objects are loose: a field OpenAI adds later passes
// through to an upstream that speaks the Responses API natively. What the
// gateway itself reads (input items, tools, text format, limits) is checked
// here, with OpenAI's documented ranges, so a bad request costs no upstream
// call. Whether an upstream can serve a valid request is decided later, by
// the translation (to-chat.ts), never here.
import { z } from 'zod';
import { stringOr, tagged } from '../tagged.js';

const MAX_OUTPUT_TOKENS = 1_000_000;

const inputText = z.looseObject({ type: z.literal('input_text'), text: z.string() });
const inputImage = z.looseObject({
  type: z.literal('input_image'),
  image_url: z.string().min(1).nullable().optional(),
  file_id: z.string().min(1).nullable().optional(),
  detail: z.enum(['low', 'high', 'auto', 'original']).optional(),
});
// Assistant turns replayed as input carry the model's own output parts.
const outputText = z.looseObject({ type: z.literal('output_text'), text: z.string() });
const refusal = z.looseObject({ type: z.literal('refusal'), refusal: z.string() });
// input_file and parts OpenAI adds later: valid, served natively or refused by the translation.
const otherPart = z.looseObject({ type: z.string().min(1) });
const contentPart = tagged({ input_text: inputText, input_image: inputImage, output_text: outputText, refusal }, otherPart);

const messageItem = z.looseObject({
  type: z.literal('message').optional(),
  role: z.enum(['user', 'assistant', 'system', 'developer']),
  content: stringOr(z.array(contentPart), 'content is a string or an array of content parts'),
  id: z.string().optional(),
  status: z.string().optional(),
});

const functionCallItem = z.looseObject({
  type: z.literal('function_call'),
  call_id: z.string().min(1),
  name: z.string().min(1),
  arguments: z.string(),
  id: z.string().optional(),
  status: z.string().optional(),
});

const functionCallOutputItem = z.looseObject({
  type: z.literal('function_call_output'),
  call_id: z.string().min(1),
  output: stringOr(z.array(contentPart), 'output is a string or an array of content parts'),
  id: z.string().nullable().optional(),
  status: z.string().nullable().optional(),
});

// reasoning, item_reference, hosted tool calls and their outputs...
const otherItem = z.looseObject({ type: z.string().min(1) });

// An item without `type` is a message (OpenAI's EasyInputMessage).
const inputItem = tagged({ message: messageItem, function_call: functionCallItem, function_call_output: functionCallOutputItem }, otherItem, { untagged: 'message' });

const functionTool = z.looseObject({
  type: z.literal('function'),
  name: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'tool names are 1-64 letters, digits, "_" or "-"'),
  description: z.string().nullable().optional(),
  parameters: z.record(z.string(), z.unknown()).nullable().optional(),
  strict: z.boolean().nullable().optional(),
});
// web_search, file_search, code_interpreter, mcp, ...: the translation decides.
const hostedTool = z.looseObject({ type: z.string().min(1) });
const tool = tagged({ function: functionTool }, hostedTool);

const toolChoice = z.union([
  z.enum(['none', 'auto', 'required']),
  tagged({ function: z.looseObject({ type: z.literal('function'), name: z.string().min(1) }) }, z.looseObject({ type: z.string().min(1) })),
]);

const textFormat = tagged(
  {
    text: z.looseObject({ type: z.literal('text') }),
    json_object: z.looseObject({ type: z.literal('json_object') }),
    json_schema: z.looseObject({
      type: z.literal('json_schema'),
    name: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'json_schema names are 1-64 letters, digits, "_" or "-"'),
    schema: z.record(z.string(), z.unknown()),
    description: z.string().optional(),
      strict: z.boolean().nullable().optional(),
    }),
  },
  z.looseObject({ type: z.enum(['text', 'json_object', 'json_schema'], 'text.format.type is "text", "json_object" or "json_schema"') }),
);

export const responsesRequestSchema = z
  .looseObject({
    model: z.string().min(1, 'model must not be empty').max(256),
    input: stringOr(z.array(inputItem), 'input is a string or an array of input items').optional(),
    instructions: z.string().nullable().optional(),
    tools: z.array(tool).max(128).optional(),
    tool_choice: toolChoice.optional(),
    parallel_tool_calls: z.boolean().nullable().optional(),
    text: z.looseObject({ format: textFormat.optional(), verbosity: z.enum(['low', 'medium', 'high']).nullable().optional() }).optional(),
    max_output_tokens: z.number().int().min(16, 'max_output_tokens must be at least 16').max(MAX_OUTPUT_TOKENS).nullable().optional(),
    max_tool_calls: z.number().int().min(1).nullable().optional(),
    temperature: z.number().min(0).max(2).nullable().optional(),
    top_p: z.number().min(0).max(1).nullable().optional(),
    top_logprobs: z.number().int().min(0).max(20).nullable().optional(),
    reasoning: z
      .looseObject({
        effort: z.enum(['none', 'minimal', 'low', 'medium', 'high', 'xhigh']).nullable().optional(),
        summary: z.enum(['auto', 'concise', 'detailed']).nullable().optional(),
      })
      .nullable()
      .optional(),
    // OpenAI's metadata: at most 16 pairs, keys up to 64 and values up to 512 characters.
    metadata: z
      .record(z.string().max(64), z.string().max(512))
      .refine((m) => Object.keys(m).length <= 16, 'metadata may hold at most 16 keys')
      .nullable()
      .optional(),
    user: z.string().max(256).optional(),
    include: z.array(z.string().min(1)).nullable().optional(),
    truncation: z.enum(['auto', 'disabled']).nullable().optional(),
    store: z.boolean().nullable().optional(),
    previous_response_id: z.string().min(1).nullable().optional(),
    stream: z.boolean().nullable().optional(),
    background: z.boolean().nullable().optional(),
  })
  .superRefine((body, ctx) => {
    if (body.input === undefined && !body.previous_response_id && !body.model.startsWith('prompt:') && body.prompt === undefined) {
      ctx.addIssue({ code: 'custom', path: ['input'], message: 'input is required: a string or an array of input items' });
    }
    if (Array.isArray(body.input) && body.input.length === 0 && !body.previous_response_id) {
      ctx.addIssue({ code: 'custom', path: ['input'], message: 'input must hold at least one item' });
    }
    if (body.background === true && body.stream === true && body.store === false) {
      ctx.addIssue({ code: 'custom', path: ['store'], message: 'background responses must be stored; leave store out or set it to true' });
    }
  });

export type ResponsesRequest = z.infer<typeof responsesRequestSchema>;
export type ResponsesInputItem = z.infer<typeof inputItem>;
export type ResponsesContentPart = z.infer<typeof contentPart>;
export type ResponsesTool = z.infer<typeof tool>;

/** OpenAI stores responses unless the request says otherwise. */
export function storeRequested(request: ResponsesRequest): boolean {
  return request.store !== false;
}
