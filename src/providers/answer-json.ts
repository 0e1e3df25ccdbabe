// Parses what a provider sent back (a whole answer or one stream event) with
// the same nesting check requests get: a linear scan first, so an answer
// nested thousands of levels deep is refused before JSON.parse and the
// recursive walks after it (redaction, the audit writer) ever see it. Every
// failure is the provider's fault: 502 upstream_error, never a 500.
import { jsonDepth } from '../json-depth.js';
import { upstreamProtocolError } from './errors.js';

export function parseAnswerJson(provider: string, text: string, o: { maxDepth: number; what: string }): unknown {
  if (jsonDepth(text, o.maxDepth) > o.maxDepth) {
    throw upstreamProtocolError(provider, `${o.what} nested deeper than the limit of ${o.maxDepth} levels`);
  }
  try {
    return JSON.parse(text);
  } catch {
    throw upstreamProtocolError(provider, `${o.what} that is not JSON`);
  }
}
