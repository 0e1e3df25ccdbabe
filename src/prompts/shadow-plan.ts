// A live request's sampled shadow run, as the render stage plans it and the
// request context carries it (ctx.shadowPlan) until the after phase hands it
// over. Types only, so the context can name it without importing a stage.

export interface ShadowPlan {
  prompt: string;
  liveVersion: string;
  shadowVersion: string;
  /** The request the shadow run sends (the app's, naming the shadow version). */
  body: Record<string, unknown>;
  /** The variables as the app sent them, to find a matching eval case. */
  variables: unknown;
}
