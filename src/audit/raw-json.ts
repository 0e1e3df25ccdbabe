// Text that is already JSON (the request body as received, the response as
// it was sent) goes into the record line as it is, instead of being parsed
// and serialized again: on the hot path that was the audit trail's largest
// cost. JSON.stringify has no raw-JSON hook on Node 20, so a request record's
// `bodies` is written by hand (request-json.ts writes it last).

export class RawJson {
  constructor(readonly text: string) {}
  /** Serialized any other way (a test printing a record), it is just the parsed value. */
  toJSON(): unknown {
    return JSON.parse(this.text);
  }
}

/** JSON text that may be spliced into a JSONL line as it is: one line, and valid JSON (the caller knows). */
export function rawJsonOf(text: string): RawJson | undefined {
  return text.includes('\n') || text.includes('\r') ? undefined : new RawJson(text);
}

const json = (value: unknown): string => (value instanceof RawJson ? value.text : (JSON.stringify(value) ?? 'null'));

/** A record's `bodies` as JSON, raw bodies put in verbatim. */
export function bodiesJson(bodies: Record<string, unknown>): string {
  let out = '{';
  let first = true;
  for (const key in bodies) {
    const value = bodies[key];
    // As JSON.stringify: a member whose value is undefined is left out.
    if (value === undefined) continue;
    out += `${first ? '' : ','}"${key}":${json(value)}`;
    first = false;
  }
  return `${out}}`;
}
