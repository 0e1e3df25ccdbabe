// What the admin API shows of the prompt catalog: every template and version,
// the pins with the share of requests each version gets, and one version
// rendered with the example values its variables declare.
import { renderMessages } from './render.js';
import { sortVersions, sharesOf, type CompiledTemplate, type PromptCatalog, type Split } from './catalog.js';
import type { TemplateValue } from './template.js';

function splitView(split: Split): Record<string, unknown> {
  return {
    live: split.live,
    canary: split.canary ?? null,
    shadow: split.shadow ?? null,
    exact_versions: split.exact === true || split.exact === false ? split.exact : [...split.exact],
    shares: sharesOf(split),
  };
}

export function listPrompts(catalog: PromptCatalog): Record<string, unknown> {
  const names = [...new Set([...catalog.templates.keys(), ...catalog.pins.keys()])].sort();
  return {
    object: 'list',
    pins_file: catalog.enabled ? catalog.pinsFile : null,
    data: names.map((name) => {
      const versions = catalog.templates.get(name) ?? new Map<string, CompiledTemplate>();
      const pin = catalog.pins.get(name);
      return {
        name,
        versions: sortVersions(versions.keys()).map((v) => {
          const t = versions.get(v)!;
          return { version: v, model: t.model, description: t.description ?? null, metadata: t.metadata, sha256: t.sha256 };
        }),
        pin: pin
          ? {
              ...splitView(pin.base),
              history: pin.history,
              eval_set: pin.evalSet ?? null,
              apps: Object.fromEntries([...pin.apps].map(([app, split]) => [app, splitView(split)])),
            }
          : null,
        eval_sets: sortVersions(catalog.evals.get(name)?.keys() ?? []),
      };
    }),
  };
}

export function showPrompt(catalog: PromptCatalog, name: string, version: string): Record<string, unknown> | undefined {
  const t = catalog.templates.get(name)?.get(version);
  if (!t) return undefined;
  const values: Record<string, TemplateValue> = {};
  const missing: string[] = [];
  for (const v of t.variables.values()) {
    const sample = v.example ?? v.default;
    if (sample !== undefined) values[v.name] = sample;
    else if (v.required) {
      // Shown as a visible placeholder, never an invented value.
      values[v.name] = v.type === 'array' ? [`<${v.name}>`] : `<${v.name}>`;
      missing.push(v.name);
    }
  }
  const pin = catalog.pins.get(name);
  return {
    object: 'prompt.template',
    name,
    version,
    file: t.file,
    sha256: t.sha256,
    description: t.description ?? null,
    metadata: t.metadata,
    model: t.model,
    parameters: t.parameters,
    tools: t.toolRefs,
    accepts_messages: t.acceptsMessages,
    variables: Object.fromEntries(
      [...t.variables.values()].map((v) => [
        v.name,
        {
          type: v.type,
          required: v.required,
          description: v.description ?? null,
          ...(v.type === 'string' ? { max_length: v.maxLength } : {}),
          ...(v.type === 'array' ? { max_items: v.maxItems, item_max_length: v.maxLength } : {}),
          ...(v.enum ? { enum: [...v.enum] } : {}),
          ...(v.default !== undefined ? { default: v.default } : {}),
          ...(v.example !== undefined ? { example: v.example } : {}),
        },
      ]),
    ),
    pinned: pin ? { live: pin.base.live === version, canary: pin.base.canary?.version === version, shadow: pin.base.shadow?.version === version } : null,
    sample: {
      variables: values,
      missing_examples: missing,
      request: { model: t.model, messages: renderMessages(t, values), ...(JSON.parse(t.fieldsJson) as Record<string, unknown>) },
    },
  };
}
