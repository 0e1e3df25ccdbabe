// multipart/form-data (RFC 7578) over a body already read within its limit:
// the parts' names, filenames and bytes. Only what the Files API needs: no
// nested multiparts, no per-part Content-Transfer-Encoding (RFC 7578 section
// 4.7 deprecates it).
import type { IncomingMessage } from 'node:http';
import { GatewayError } from '../errors.js';

export interface FormPart {
  name: string;
  /** Set for file parts. */
  filename: string | undefined;
  contentType: string | undefined;
  data: Buffer;
}

const MAX_PARTS = 16;
const MAX_HEADER_BYTES = 8 * 1024;

/** The boundary from `Content-Type: multipart/form-data; boundary=...`; 415 for any other type. */
export function multipartBoundary(incoming: IncomingMessage): string {
  const type = incoming.headers['content-type'] ?? '';
  const [essence, ...params] = type.split(';');
  if (essence!.trim().toLowerCase() !== 'multipart/form-data') {
    throw new GatewayError('unsupported_media_type', 'Send the file as multipart/form-data with a "file" part and a "purpose" field.');
  }
  for (const p of params) {
    const eq = p.indexOf('=');
    if (eq < 0 || p.slice(0, eq).trim().toLowerCase() !== 'boundary') continue;
    let value = p.slice(eq + 1).trim();
    if (value.startsWith('"') && value.endsWith('"') && value.length >= 2) value = value.slice(1, -1);
    // RFC 2046 section 5.1.1: 1 to 70 characters.
    if (value.length >= 1 && value.length <= 70) return value;
  }
  throw new GatewayError('unsupported_media_type', 'The multipart/form-data Content-Type names no valid boundary.');
}

function malformed(): GatewayError {
  return new GatewayError('invalid_request', 'The multipart/form-data body is malformed; send it as an HTTP client library builds it.');
}

/** A Content-Disposition parameter, quoted (with the %22/%0D/%0A escapes of the WHATWG form encoding, and %5C as the openai SDK writes) or bare. */
function dispositionParam(header: string, name: string): string | undefined {
  const m = new RegExp(`(?:^|;)\\s*${name}\\s*=\\s*(?:"([^"]*)"|([^;\\s]*))`, 'i').exec(header);
  if (!m) return undefined;
  if (m[1] === undefined) return m[2];
  return m[1].replace(/%22/g, '"').replace(/%5C/gi, '\\').replace(/%0D/gi, '\r').replace(/%0A/gi, '\n');
}

export function parseMultipart(body: Buffer, boundary: string): FormPart[] {
  const delimiter = Buffer.from(`--${boundary}`);
  let at = body.indexOf(delimiter);
  if (at < 0) throw malformed();
  const parts: FormPart[] = [];
  for (;;) {
    at += delimiter.length;
    // `--` after a delimiter ends the body (whatever follows is epilogue).
    if (body[at] === 0x2d && body[at + 1] === 0x2d) return parts;
    // Transport padding, then CRLF.
    while (body[at] === 0x20 || body[at] === 0x09) at++;
    if (body[at] !== 0x0d || body[at + 1] !== 0x0a) throw malformed();
    at += 2;
    const headersEnd = body.indexOf('\r\n\r\n', at);
    if (headersEnd < 0 || headersEnd - at > MAX_HEADER_BYTES) throw malformed();
    const headers = new Map<string, string>();
    for (const line of body.subarray(at, headersEnd).toString('utf8').split('\r\n')) {
      const colon = line.indexOf(':');
      if (colon > 0) headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
    }
    const dataStart = headersEnd + 4;
    const next = body.indexOf(Buffer.concat([Buffer.from('\r\n'), delimiter]), dataStart);
    if (next < 0) throw malformed();
    const disposition = headers.get('content-disposition') ?? '';
    const name = dispositionParam(disposition, 'name');
    if (!/^\s*form-data\s*(;|$)/i.test(disposition) || name === undefined) throw malformed();
    if (parts.length === MAX_PARTS) throw new GatewayError('invalid_request', `The form has more than ${MAX_PARTS} parts; send "file", "purpose" and at most expires_after.`);
    parts.push({ name, filename: dispositionParam(disposition, 'filename'), contentType: headers.get('content-type'), data: body.subarray(dataStart, next) });
    at = next + 2;
  }
}
