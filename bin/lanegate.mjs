#!/usr/bin/env node
// In a development checkout (src/ and tsx present) this runs the TypeScript
// sources, so `npm start` never serves a stale build; in the Docker image,
// which ships only dist/, it runs the compiled CLI.
import { existsSync } from 'node:fs';

const src = new URL('../src/cli.ts', import.meta.url);
let tsx;
if (existsSync(src)) {
  try {
    tsx = await import('tsx/esm/api');
  } catch {
    // production install without dev dependencies: fall back to dist/
  }
}
if (tsx) {
  tsx.register();
  await import(src.href);
} else {
  await import(new URL('../dist/cli.js', import.meta.url).href);
}
