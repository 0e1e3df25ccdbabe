// Regexes from eval sets (regex checks, JSON schema patterns) run inside the
// gateway too, on shadow outputs, so they get the same treatment as custom
// detectors: V8's linear-time engine (the `l` flag), which refuses patterns
// it cannot run in linear time instead of letting one stall the event loop.
// One test per output, on text bounded by max_tokens, so no windowing is needed.
import v8 from 'node:v8';
import { foldCase } from '../policy/detectors/case-fold.js';

v8.setFlagsFromString('--enable-experimental-regexp-engine');

const ALLOWED_FLAGS = 'ims';

function engineSupports(flag: string): boolean {
  try {
    new RegExp('a', `${flag}l`);
    return true;
  } catch {
    return false;
  }
}
const NATIVE_I = engineSupports('i');

export function compileLinearRegex(pattern: string, flags: string): RegExp {
  for (const [i, flag] of [...flags].entries()) {
    if (!ALLOWED_FLAGS.includes(flag)) throw new Error(`flag "${flag}" is not supported; use only i, m and s`);
    if (flags.indexOf(flag) !== i) throw new Error(`flag "${flag}" is given twice`);
  }
  let source = pattern;
  let engineFlags = flags;
  if (flags.includes('i') && !NATIVE_I) {
    source = foldCase(pattern);
    engineFlags = flags.replace('i', '');
  }
  try {
    return new RegExp(source, `${engineFlags}l`);
  } catch (err) {
    const reason = err instanceof Error ? (err.message.split(': ').pop() ?? err.message) : String(err);
    if (reason.includes('linear time')) {
      throw new Error('the pattern cannot run in linear time: use no backreferences or lookaround and no counted repeat above 16 (write + instead of {1,64})');
    }
    throw new Error(`invalid pattern: ${reason}`);
  }
}
