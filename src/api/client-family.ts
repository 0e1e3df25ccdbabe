// The client's user-agent as a family, a label with a handful of values:
// finance wants to see what coding agents and SDKs cost, and a metrics label
// must never carry the raw header (versions and platforms would explode its
// cardinality). Checked most specific first: agent frameworks run on top of
// the SDKs, and some send the SDK's header with their own name added.

export const CLIENT_FAMILIES = [
  'claude-cli',
  'openai-agents',
  'ai-sdk',
  'langchain',
  'openai-node',
  'openai-python',
  'anthropic-sdk',
  'other',
  'none',
] as const;

export type ClientFamily = (typeof CLIENT_FAMILIES)[number];

const PATTERNS: ReadonlyArray<readonly [RegExp, ClientFamily]> = [
  // Claude Code: "claude-cli/1.0.83 (external, cli)".
  [/^claude-cli\//i, 'claude-cli'],
  // @openai/agents: "Agents/JavaScript 0.1.0"; openai-agents-python: "Agents/Python 0.2.0".
  [/^agents\/|openai-agents/i, 'openai-agents'],
  // Vercel AI SDK: "ai-sdk/openai/2.0.0 ai-sdk/provider-utils/3.0.0 runtime/node".
  [/(^|\s)ai-sdk\//i, 'ai-sdk'],
  [/langchain/i, 'langchain'],
  // The official SDKs: "OpenAI/JS 5.12.0", "OpenAI/Python 1.99.0", "Anthropic/JS 0.60.0".
  [/^openai\/js\b/i, 'openai-node'],
  [/^openai\/python\b/i, 'openai-python'],
  [/^anthropic\//i, 'anthropic-sdk'],
];

// Most traffic comes from a few clients sending the same header over and
// over: remembering the last answer saves the regexes on the hot path.
let lastHeader: string | undefined;
let lastFamily: ClientFamily = 'none';

export function clientFamily(header: string | string[] | undefined): ClientFamily {
  const ua = Array.isArray(header) ? header[0] : header;
  if (!ua) return 'none';
  if (ua === lastHeader) return lastFamily;
  let family: ClientFamily = 'other';
  for (const [pattern, name] of PATTERNS) {
    if (pattern.test(ua)) {
      family = name;
      break;
    }
  }
  lastHeader = ua;
  lastFamily = family;
  return family;
}
