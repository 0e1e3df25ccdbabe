// Regexes from eval sets (regex checks, JSON schema patterns) run inside the
// gateway too, on shadow outputs, so they get the same treatment as custom
// detectors: V8's linear-time engine. One test per output, on text bounded by
// max_tokens, so no windowing is needed.
export { compileLinearRegex } from '../policy/detectors/custom-regex.js';
