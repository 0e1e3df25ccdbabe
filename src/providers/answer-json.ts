// Parses what a provider sent back (a whole answer or one stream event) with
// the same nesting check requests get: a linear scan first, so an answer
// nested thousands of levels deep is refused before JSON.parse and the
// recursive walks after it (redaction, the audit writer) ever see it. Every
// failure is the provider's fault: 502 upstream_error, never a 500.
import { jsonDepthAndMembers } from '../json-depth.js';
import { upstreamProtocolError } from './errors.js';

export function parseAnswerJson(provider: string, text: string, o: { maxDepth: number; what: string }): unknown {
  return parseAnswer(provider, text, o).value;
}

/** A whole answer: its text, the value parsed from it, and how many object members the text holds (see upstream.ts). */
export interface AnswerJson {
  value: unknown;
  text: string;
  members: number;
}

/** parseAnswerJson for a whole answer, keeping its text and counting its members in the same scan. */
export function parseAnswer(provider: string, text: string, o: { maxDepth: number; what: string }): AnswerJson {
  const { depth, members } = jsonDepthAndMembers(text, o.maxDepth);
  if (depth > o.maxDepth) throw upstreamProtocolError(provider, `${o.what} nested deeper than the limit of ${o.maxDepth} levels`);
  try {
    return { value: JSON.parse(text), text, members };
  } catch {
    throw upstreamProtocolError(provider, `${o.what} that is not JSON`);
  }
}
