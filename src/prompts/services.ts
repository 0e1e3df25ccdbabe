// What the running gateway keeps for prompt templates across requests (the
// templates themselves live in the compiled config, swapped on reload).
import type { PromptServices } from '../pipeline/context.js';
import { createShadowRunner, type ShadowRunnerOptions } from './shadow.js';

export function createPromptServices(options: ShadowRunnerOptions): PromptServices {
  return { shadow: createShadowRunner(options) };
}
