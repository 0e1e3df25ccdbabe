// Virtual API keys. Config holds only sha256 digests; a presented key is
// hashed and compared in constant time, so neither the config nor the timing
// of a comparison gives a key away.
import { hash, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import type { CompiledConfig, KeyInfo } from '../config/compile.js';
import { GatewayError } from '../errors.js';
import { sha256Hex } from '../sha256.js';

export function hashKey(key: string): string {
  return sha256Hex(key);
}

/** Where a client may put its key besides `Authorization: Bearer`: `api-key` as Azure clients send it, `x-api-key` as Anthropic's do. */
export type KeyHeader = 'api-key' | 'x-api-key';

/**
 * The key from `Authorization: Bearer ...`, or the API's own key header.
 * Both naming different keys is refused rather than one picked: a proxy in
 * front may have checked the other one.
 */
export function presentedKey(headers: IncomingHttpHeaders, keyHeader: KeyHeader = 'api-key'): string | undefined {
  const apiKeyHeader = headers[keyHeader];
  const apiKey = typeof apiKeyHeader === 'string' && apiKeyHeader.trim().length > 0 ? apiKeyHeader.trim() : undefined;
  const auth = headers.authorization;
  if (auth) {
    const bearer = auth.length > 7 && auth.slice(0, 7).toLowerCase() === 'bearer ' ? auth.slice(7).trim() || undefined : undefined;
    if (apiKey !== undefined && bearer !== apiKey) {
      throw new GatewayError('invalid_api_key', `The request sends two different keys, in Authorization and in ${keyHeader}; send one.`);
    }
    return bearer;
  }
  return apiKey;
}

const MISSING = 'Missing API key. Send it as "Authorization: Bearer <key>".';
const MISSING_ANTHROPIC = 'Missing API key. Send your gateway key as "x-api-key: <key>" or "Authorization: Bearer <key>".';
const INVALID = 'Invalid API key. Check the key you were given for this gateway.';

export function authenticateKey(config: CompiledConfig, headers: IncomingHttpHeaders, keyHeader: KeyHeader = 'api-key'): KeyInfo {
  if (config.auth.mode === 'none') return config.auth.anonymous;
  const key = presentedKey(headers, keyHeader);
  if (!key) throw new GatewayError('invalid_api_key', keyHeader === 'x-api-key' ? MISSING_ANTHROPIC : MISSING);
  if (key.length > 512) throw new GatewayError('invalid_api_key', INVALID);
  const digest = hash('sha256', key, 'buffer');
  const entry = config.keysByHash.get(digest.toString('hex'));
  if (!entry || !timingSafeEqual(entry.digest, digest)) throw new GatewayError('invalid_api_key', INVALID);
  return entry.key;
}

/**
 * The identity of a key by its id, for work queued with that key (a batch's
 * lines run as the key that created the batch). Undefined when the key was
 * removed from the config since: its queued work then fails, it does not run
 * as anyone else.
 */
export function keyById(config: CompiledConfig, id: string): KeyInfo | undefined {
  if (config.auth.mode === 'none') return config.auth.anonymous.id === id ? config.auth.anonymous : undefined;
  for (const entry of config.keysByHash.values()) if (entry.key.id === id) return entry.key;
  return undefined;
}
