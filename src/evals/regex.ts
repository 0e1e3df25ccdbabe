// Regexes from eval sets (regex checks, JSON schema patterns) run inside the
// gateway too, on shadow outputs, so they get the same treatment as custom
// detectors: RE2, linear in the text. One test per output, on text bounded by
// max_tokens, so no windowing is needed.
export { compileLinearRegex, type LinearRegex } from '../policy/detectors/linear-regex.js';
