// sha256 as 64 hex characters: the digest every part of the gateway writes
// (key hashes, cache keys, audit bodies and chains, prompt and eval files).
import { hash } from 'node:crypto';

export function sha256Hex(data: string | Buffer): string {
  // The one-shot form: no Hash object per call.
  return hash('sha256', data, 'hex');
}
