// Text that is already JSON (the request body as received, the response as
// it was sent) goes into the record line as it is, instead of being parsed
// and serialized again: on the hot path that was the audit trail's largest
// cost. JSON.stringify has no raw-JSON hook on Node 20, so each piece stands
// in as a token, unguessable per process, replaced after serialization.
import { randomBytes } from 'node:crypto';

const NONCE = randomBytes(9).toString('base64url');
let collected: RawJson[] | undefined;

export class RawJson {
  constructor(readonly text: string) {}
  toJSON(): unknown {
    // Outside stringifyEntry (a test printing a record, say) it is just the parsed value.
    if (!collected) return JSON.parse(this.text);
    return `\u0000${NONCE}:${collected.push(this) - 1}\u0000`;
  }
}

/** JSON text that may be spliced into a JSONL line as it is: one line, and valid JSON (the caller knows). */
export function rawJsonOf(text: string): RawJson | undefined {
  return text.includes('\n') || text.includes('\r') ? undefined : new RawJson(text);
}

/** JSON.stringify, with RawJson pieces spliced in verbatim. */
export function stringifyEntry(entry: unknown): string {
  collected = [];
  try {
    let json = JSON.stringify(entry);
    let from = 0;
    for (let i = 0; i < collected.length; i++) {
      const token = JSON.stringify(`\u0000${NONCE}:${i}\u0000`);
      const at = json.indexOf(token, from);
      if (at < 0) continue;
      const text = collected[i]!.text;
      json = json.slice(0, at) + text + json.slice(at + token.length);
      from = at + text.length;
    }
    return json;
  } finally {
    collected = undefined;
  }
}
