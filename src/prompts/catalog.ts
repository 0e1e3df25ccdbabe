// The compiled prompt artifacts of one config load: templates by name and
// version, tool schemas, eval sets and pins, as plain lookups. A reload
// builds a new catalog with the rest of the config and swaps it in whole.
import type { ToolDefinition } from '../api/schemas.js';
import type { EvalSet } from '../evals/load.js';
import type { PromptsConfig } from './config.js';
import type { ToolFile } from './schema.js';
import type { Segment } from './template.js';
import type { CompiledVariable } from './variables.js';

export interface CompiledMessage {
  role: 'system' | 'developer' | 'user' | 'assistant';
  name: string | undefined;
  segments: Segment[];
  /** The content when the message has no tags: rendered once, at load. */
  constant: string | undefined;
}

export interface CompiledTemplate {
  name: string;
  version: string;
  file: string;
  /** sha256 of the file as loaded. */
  sha256: string;
  description: string | undefined;
  metadata: Record<string, unknown>;
  /** The model or route the rendered request goes to. */
  model: string;
  parameters: Record<string, unknown>;
  /** `{...parameters, tools?}` as JSON, parsed per request so no request shares objects with another. */
  fieldsJson: string;
  toolRefs: string[];
  tools: ToolDefinition[];
  variables: ReadonlyMap<string, CompiledVariable>;
  messages: CompiledMessage[];
  acceptsMessages: boolean;
}

/** Which versions one app gets. */
export interface Split {
  live: string;
  canary: { version: string; weight: number } | undefined;
  shadow: { version: string; sample: number } | undefined;
  /** Versions the app may ask for by name: all (true), none (false) or these. */
  exact: boolean | ReadonlySet<string>;
}

export interface CompiledPin {
  name: string;
  base: Split;
  apps: ReadonlyMap<string, Split>;
  history: string[];
  evalSet: string | undefined;
}

export interface PromptCatalog {
  /** False when the config has no `prompts.dir`: prompt references are then unknown models. */
  enabled: boolean;
  dir: string;
  toolsDir: string;
  evalsDir: string;
  pinsFile: string;
  reportsDir: string;
  shadow: PromptsConfig['shadow'];
  templates: ReadonlyMap<string, ReadonlyMap<string, CompiledTemplate>>;
  tools: ReadonlyMap<string, ReadonlyMap<string, ToolFile>>;
  evals: ReadonlyMap<string, ReadonlyMap<string, EvalSet>>;
  pins: ReadonlyMap<string, CompiledPin>;
}

export function emptyCatalog(config?: PromptsConfig): PromptCatalog {
  return {
    enabled: false,
    dir: '',
    toolsDir: '',
    evalsDir: '',
    pinsFile: '',
    reportsDir: config?.reports_dir ?? './data/evals',
    shadow: config?.shadow ?? { max_concurrent: 2, max_queue: 100, shutdown_wait_ms: 2_000 },
    templates: new Map(),
    tools: new Map(),
    evals: new Map(),
    pins: new Map(),
  };
}

/** Versions sorted the way people number them: v2 before v10. */
export function sortVersions(versions: Iterable<string>): string[] {
  return [...versions].sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
}

export type Variant = 'pinned' | 'canary' | 'exact';

export interface PinChoice {
  version: string;
  variant: Variant;
  /** Also run this version in the background (sampled already). */
  shadow: string | undefined;
}

/** The split that applies to an app: its own pin, or the prompt's. */
export function splitFor(pin: CompiledPin, app: string | undefined): Split {
  return (app !== undefined && pin.apps.get(app)) || pin.base;
}

/**
 * Picks the version for one request: the canary for its share of requests,
 * else the live version, and whether this request is also sampled for a
 * shadow run (never for a canary request: shadow compares against live).
 */
export function choosePinned(split: Split, random: () => number = Math.random): PinChoice {
  if (split.canary && random() < split.canary.weight) return { version: split.canary.version, variant: 'canary', shadow: undefined };
  const shadow = split.shadow && random() < split.shadow.sample ? split.shadow.version : undefined;
  return { version: split.live, variant: 'pinned', shadow };
}

export function exactAllowed(split: Split, version: string): boolean {
  return split.exact === true || (split.exact !== false && split.exact.has(version));
}

/** The share of requests each version gets under a split. */
export function sharesOf(split: Split): Record<string, number> {
  const shares: Record<string, number> = { [split.live]: 1 };
  if (split.canary) {
    shares[split.live] = Math.round((1 - split.canary.weight) * 1e6) / 1e6;
    shares[split.canary.version] = (shares[split.canary.version] ?? 0) + split.canary.weight;
  }
  return shares;
}

/** The eval set a prompt gates on: the pin's, else the newest. */
export function defaultEvalSet(catalog: PromptCatalog, name: string): EvalSet | undefined {
  const sets = catalog.evals.get(name);
  if (!sets || sets.size === 0) return undefined;
  const pinned = catalog.pins.get(name)?.evalSet;
  if (pinned) return sets.get(pinned);
  return sets.get(sortVersions(sets.keys()).at(-1)!);
}
