// What the running gateway keeps for prompt templates across requests (the
// templates themselves live in the compiled config, swapped on reload).
import { createShadowRunner, type ShadowRunner, type ShadowRunnerOptions } from './shadow.js';

export interface PromptServices {
  shadow: ShadowRunner;
}

export function createPromptServices(options: ShadowRunnerOptions): PromptServices {
  return { shadow: createShadowRunner(options) };
}
