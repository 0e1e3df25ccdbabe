// Header fields a request may carry only once. Node keeps the first of a
// repeated Authorization or Host and drops the rest, so the gateway would
// act on one of two values a proxy in front of it may have read the other
// way (RFC 9110 section 5.3; RFC 9112 section 3.2 requires a 400 for two Host
// fields). Such requests are refused before anything reads them.
import type { IncomingMessage } from 'node:http';
import { GatewayError } from '../errors.js';

const CREDENTIALS = ['authorization', 'api-key'] as const;

export function refuseAmbiguousHeaders(incoming: IncomingMessage): void {
  const fields = incoming.headersDistinct;
  if ((fields.host?.length ?? 0) > 1) throw new GatewayError('invalid_request', 'The request has more than one Host header; send exactly one.');
  for (const name of CREDENTIALS) {
    if ((fields[name]?.length ?? 0) > 1) {
      throw new GatewayError('invalid_api_key', `The request has more than one ${name === 'authorization' ? 'Authorization' : 'api-key'} header; send the key once.`);
    }
  }
}
