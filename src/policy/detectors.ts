// The detectors lanes run over request text: six built-ins and custom
// patterns from policy files. Each is a hand-written single-pass scanner
// (detectors/*.ts), because V8's default regexp engine backtracks: an
// innocent-looking /[a-z0-9.]+@…/g takes quadratic time on "aaaa…", and
// prompts are attacker-controlled. Every detector runs in time linear in
// the input, adversarial input included, and skips text that cannot hold a
// match (no "@", no digit) in native code. They read text normalised by
// detectors/normalize.ts (scan.ts does that once per text), so they only
// need to know ASCII digits, letters and separators.
import { createApiKeyDetector } from './detectors/api-key.js';
import { createCardDetector } from './detectors/card.js';
import { createEmailDetector } from './detectors/email.js';
import { createIbanDetector } from './detectors/iban.js';
import { createPhoneDetector } from './detectors/phone.js';
import { createPrivateKeyDetector } from './detectors/private-key.js';
import type { Detector } from './detectors/types.js';

export type { Detector, Finding } from './detectors/types.js';
export { createRegexDetector, RegexDetectorError } from './detectors/custom-regex.js';
export { ibanValid, luhnValid } from './detectors/checksums.js';
export { findingsToOriginal, normalizeText, type NormalizedText } from './detectors/normalize.js';

export const BUILTIN_DETECTOR_NAMES = ['email', 'phone', 'card', 'iban', 'api_key', 'private_key'] as const;
export type BuiltinDetectorName = (typeof BUILTIN_DETECTOR_NAMES)[number];

export const BUILTIN_DETECTORS: Readonly<Record<BuiltinDetectorName, Detector>> = Object.freeze({
  email: createEmailDetector('email'),
  phone: createPhoneDetector('phone'),
  card: createCardDetector('card'),
  iban: createIbanDetector('iban'),
  api_key: createApiKeyDetector('api_key'),
  private_key: createPrivateKeyDetector('private_key'),
});
