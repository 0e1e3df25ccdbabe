// A small server-sent-events parser (WHATWG "event stream" rules): lines end
// in LF, CR or CRLF; `data` lines of one event are joined with LF; comments
// and unknown fields are skipped; an event ends at a blank line.
//
// One event may hold at most `maxEventBytes` (counted on the decoded text,
// the part not yet delivered): past that the parser throws
// SseEventTooLargeError rather than buffer a provider's endless line.

export interface SseEvent {
  event: string;
  data: string;
}

export class SseEventTooLargeError extends Error {
  constructor(readonly limit: number) {
    super(`a stream event larger than ${limit} bytes`);
    this.name = 'SseEventTooLargeError';
  }
}

export interface SseOptions {
  maxEventBytes?: number;
}

export async function* parseSse(body: AsyncIterable<Buffer | Uint8Array | string>, options: SseOptions = {}): AsyncGenerator<SseEvent> {
  const maxEventBytes = options.maxEventBytes ?? Infinity;
  const decoder = new TextDecoder('utf-8');
  let buffer = '';
  let event = '';
  let data: string[] = [];
  let dataSize = 0;
  let skipLf = false;

  for await (const chunk of body) {
    // What is left of the last chunk holds no line end: scan only the new text,
    // so a long line arriving in many chunks costs linear time, not quadratic.
    const resumeAt = buffer.length;
    buffer += typeof chunk === 'string' ? chunk : decoder.decode(chunk, { stream: true });
    let start = 0;
    for (let i = resumeAt; i < buffer.length; i++) {
      const c = buffer.charCodeAt(i);
      if (c !== 10 && c !== 13) {
        skipLf = false;
        continue;
      }
      if (c === 10 && skipLf) {
        // second half of a CRLF split across the previous line end
        skipLf = false;
        start = i + 1;
        continue;
      }
      const line = buffer.slice(start, i);
      skipLf = c === 13;
      start = i + 1;
      if (line.length === 0) {
        if (data.length > 0) yield { event: event || 'message', data: data.join('\n') };
        event = '';
        data = [];
        dataSize = 0;
        continue;
      }
      if (line.charCodeAt(0) === 58) continue; // ':' comment
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? '' : line.slice(colon + 1);
      if (value.charCodeAt(0) === 32) value = value.slice(1);
      if (field === 'data') {
        data.push(value);
        dataSize += value.length + 1;
        if (dataSize > maxEventBytes) throw new SseEventTooLargeError(maxEventBytes);
      } else if (field === 'event') event = value;
    }
    buffer = buffer.slice(start);
    // A line that has not ended yet counts too: it is the one that could grow forever.
    if (dataSize + buffer.length > maxEventBytes) throw new SseEventTooLargeError(maxEventBytes);
  }
  buffer += decoder.decode();
  if (buffer.length > 0 && buffer.startsWith('data')) {
    const colon = buffer.indexOf(':');
    data.push(colon < 0 ? '' : buffer.slice(colon + 1).trimStart());
  }
  // A stream that ends without the final blank line still delivers its last event.
  if (data.length > 0) yield { event: event || 'message', data: data.join('\n') };
}
