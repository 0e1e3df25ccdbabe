// The template language: logic-less on purpose. A template is text with
//
//   {{name}}                  the value of a declared variable
//   {{#list}}...{{/list}}     the body once per item of an array variable
//   {{.}}                     inside a section: the current item
//
// and nothing else: no expressions, helpers, partials, escaping modes or
// lookups outside the declared variables. Text is compiled once, at config
// load, into segments; rendering walks them and concatenates. Values are
// appended as data and never parsed again, so a variable holding "{{x}}"
// comes out as the six characters "{{x}}".
//
// Anything between "{{" and "}}" that is not one of the forms above is a load
// error, so a typo ("{{ticekt}}", "{{#tags}}" without its close) never ships.

export type Segment =
  | { kind: 'text'; text: string }
  | { kind: 'var'; name: string }
  | { kind: 'item' }
  | { kind: 'section'; name: string; body: Segment[] };

export interface TemplateProblem {
  /** 1-based offset into the text, for the error message. */
  at: number;
  message: string;
}

export interface ParsedTemplate {
  segments: Segment[];
  /** Variables used outside sections. */
  scalars: Set<string>;
  /** Variables iterated by sections. */
  sections: Set<string>;
  problems: TemplateProblem[];
}

const NAME = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;

export function parseTemplate(text: string): ParsedTemplate {
  const root: Segment[] = [];
  const scalars = new Set<string>();
  const sections = new Set<string>();
  const problems: TemplateProblem[] = [];
  // At most one open section: lists are flat, so nesting would only ever
  // repeat one list inside another, which no prompt needs.
  let open: { name: string; body: Segment[]; at: number } | undefined;
  const target = () => (open ? open.body : root);

  let i = 0;
  while (i < text.length) {
    const start = text.indexOf('{{', i);
    if (start < 0) {
      target().push({ kind: 'text', text: text.slice(i) });
      break;
    }
    if (start > i) target().push({ kind: 'text', text: text.slice(i, start) });
    const end = text.indexOf('}}', start + 2);
    if (end < 0) {
      problems.push({ at: start + 1, message: '"{{" is never closed with "}}"' });
      break;
    }
    const raw = text.slice(start + 2, end);
    const tag = raw.trim();
    const at = start + 1;
    i = end + 2;

    if (tag === '.') {
      if (!open) problems.push({ at, message: '{{.}} is the current item and only means something inside a {{#list}}...{{/list}} section' });
      else target().push({ kind: 'item' });
      continue;
    }
    const sigil = tag[0];
    const name = sigil === '#' || sigil === '/' ? tag.slice(1).trim() : tag;
    if (!NAME.test(name)) {
      problems.push({ at, message: `"{{${raw}}}" is not a tag: use {{name}}, {{#list}}...{{/list}} or {{.}} (names are letters, digits and "_")` });
      continue;
    }
    if (sigil === '#') {
      if (open) {
        problems.push({ at, message: `section {{#${name}}} starts inside {{#${open.name}}}; sections cannot be nested` });
        continue;
      }
      open = { name, body: [], at };
      sections.add(name);
    } else if (sigil === '/') {
      if (!open) problems.push({ at, message: `{{/${name}}} closes a section that was never opened` });
      else if (open.name !== name) problems.push({ at, message: `{{/${name}}} closes {{#${open.name}}}; close it with {{/${open.name}}}` });
      else {
        root.push({ kind: 'section', name, body: merge(open.body) });
        open = undefined;
      }
    } else {
      target().push({ kind: 'var', name });
      scalars.add(name);
    }
  }
  if (open) problems.push({ at: open.at, message: `section {{#${open.name}}} is never closed with {{/${open.name}}}` });
  return { segments: merge(root), scalars, sections, problems };
}

/** Joins neighbouring text segments so rendering appends as few pieces as possible. */
function merge(segments: Segment[]): Segment[] {
  const out: Segment[] = [];
  for (const s of segments) {
    const last = out.at(-1);
    if (s.kind === 'text' && last?.kind === 'text') out[out.length - 1] = { kind: 'text', text: last.text + s.text };
    else if (s.kind !== 'text' || s.text !== '') out.push(s);
  }
  return out;
}

/** A value as the template inserts it. */
export type TemplateValue = string | number | boolean | readonly string[] | undefined;

/**
 * Renders compiled segments. `values` must already be validated against the
 * template's declared variables: scalars are strings, numbers or booleans,
 * sections are arrays of strings; a missing optional value renders as "".
 */
export function renderSegments(segments: readonly Segment[], values: Readonly<Record<string, TemplateValue>>): string {
  let out = '';
  for (const s of segments) {
    switch (s.kind) {
      case 'text':
        out += s.text;
        break;
      case 'var': {
        const v = values[s.name];
        if (v !== undefined) out += String(v);
        break;
      }
      case 'section': {
        const list = values[s.name];
        if (!Array.isArray(list)) break;
        for (const item of list as readonly string[]) out += renderItem(s.body, item, values);
        break;
      }
      case 'item':
        // Only reachable inside a section, which renderItem handles.
        break;
    }
  }
  return out;
}

function renderItem(body: readonly Segment[], item: string, values: Readonly<Record<string, TemplateValue>>): string {
  let out = '';
  for (const s of body) {
    if (s.kind === 'text') out += s.text;
    else if (s.kind === 'item') out += item;
    else if (s.kind === 'var') {
      const v = values[s.name];
      if (v !== undefined) out += String(v);
    }
  }
  return out;
}

/** The text of a template with no tags, or undefined when it has any. */
export function constantText(segments: readonly Segment[]): string | undefined {
  if (segments.length === 0) return '';
  if (segments.length === 1 && segments[0]!.kind === 'text') return segments[0]!.text;
  return undefined;
}
