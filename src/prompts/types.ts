// What the prompt stages put on the request context: the template a request
// was rendered from and the shadow run it hands over. Apart from the stages
// so that the context never imports a stage module.
import type { Variant } from './catalog.js';

export interface PromptUse {
  name: string;
  version: string;
  /** Served as the pin's canary. */
  canary?: boolean;
  variant: Variant | 'shadow' | 'eval';
}

export interface ShadowPlan {
  prompt: string;
  liveVersion: string;
  shadowVersion: string;
  /** The request the shadow run sends (the app's, naming the shadow version). */
  body: Record<string, unknown>;
  /** The variables as the app sent them, to find a matching eval case. */
  variables: unknown;
}
