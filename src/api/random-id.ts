// Unguessable ids for the ingresses' objects (`resp_…`, `msg_…`): a stored
// response is read by its id, so ids come from the CSPRNG. One
// randomFillSync call per id cost as much as a tenth of a Responses request
// (it is a synchronous syscall-backed call each time); the bytes are drawn
// from a pool refilled 4 KiB at a time instead, as Node's own randomUUID does.
import { randomFillSync } from 'node:crypto';

const POOL_BYTES = 4096;
const pool = Buffer.alloc(POOL_BYTES);
let offset = POOL_BYTES;

/** `bytes` random bytes as lowercase hex (2 * bytes characters). */
export function randomHex(bytes: number): string {
  if (offset + bytes > POOL_BYTES) {
    randomFillSync(pool);
    offset = 0;
  }
  const hex = pool.toString('hex', offset, offset + bytes);
  offset += bytes;
  return hex;
}
