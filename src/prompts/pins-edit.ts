// Edits the pins file for `lanegate promote` and `lanegate rollback` through
// the yaml package's Document API, so comments, key order and layout survive:
// only the nodes that change are touched.
//
// The previous version is kept in the file itself: promote appends the old
// `live` to `history` (a flow list, oldest first, at most HISTORY_MAX long),
// rollback moves `live` back to the last entry and removes it. So a rollback
// needs nothing but the file, and the file's git history tells the rest.
import { isMap, isScalar, isSeq, parseDocument, type Document, type Node, type YAMLMap } from 'yaml';

export const HISTORY_MAX = 20;

export class PinEditError extends Error {
  override name = 'PinEditError';
}

export interface PinChange {
  /** The version that was live (null: the prompt had no pin). */
  from: string | null;
  to: string;
  /** The whole file, edited. */
  text: string;
  /** What else changed, for the CLI's message. */
  notes: string[];
}

function load(text: string): Document.Parsed {
  const doc = parseDocument(text, { keepSourceTokens: false });
  if (doc.errors.length > 0) throw new PinEditError(`the pins file is not valid YAML: ${doc.errors[0]!.message.split('\n')[0]}`);
  if (doc.contents !== null && !isMap(doc.contents)) throw new PinEditError('the pins file must be a map of prompt names');
  return doc;
}

/**
 * The yaml package's canonical layout (one space before a trailing comment,
 * no padding in flow lists, no folding): a file already in it comes back
 * byte for byte except for the nodes that changed, so a promotion's diff is
 * the pin and nothing else.
 */
function render(doc: Document.Parsed): string {
  return doc.toString({ flowCollectionPadding: false, lineWidth: 0 });
}

/** True when the file is in the canonical layout (a promotion then changes only the pin's lines). */
export function isCanonical(text: string): boolean {
  return render(load(text)) === text;
}

function scalarString(node: unknown): string | undefined {
  return isScalar(node) && (typeof node.value === 'string' || typeof node.value === 'number') ? String(node.value) : undefined;
}

/** Drops a canary or shadow that points at `version` (it is now live, or being rolled back). */
function dropExperiments(entry: YAMLMap, version: string, notes: string[]): void {
  const canary = entry.get('canary', true);
  if (isMap(canary) && scalarString(canary.get('version', true)) === version) {
    entry.delete('canary');
    notes.push(`removed the canary on ${version}`);
  }
  const shadow = entry.get('shadow', true);
  const shadowVersion = isMap(shadow) ? scalarString(shadow.get('version', true)) : scalarString(shadow);
  if (shadowVersion === version) {
    entry.delete('shadow');
    entry.delete('sample');
    notes.push(`removed the shadow run of ${version}`);
  }
}

export function promoteInText(text: string, prompt: string, version: string): PinChange {
  const doc = load(text);
  const notes: string[] = [];
  const node = doc.get(prompt, true) as Node | undefined;
  let from: string | null = null;
  if (node === undefined || node === null) {
    doc.set(prompt, doc.createNode({ live: version }));
    notes.push(`pinned ${prompt} for the first time`);
  } else if (isScalar(node)) {
    from = scalarString(node) ?? null;
    if (from === version) throw new PinEditError(`${prompt} is already pinned to ${version}`);
    // The shorthand `triage: v12` has no room for history: it becomes a map.
    const entry = doc.createNode({ live: version, history: from ? [from] : [] }) as YAMLMap;
    const history = entry.get('history', true);
    if (isSeq(history)) history.flow = true;
    entry.commentBefore = node.commentBefore;
    entry.comment = node.comment;
    doc.set(prompt, entry);
  } else if (isMap(node)) {
    from = scalarString(node.get('live', true)) ?? null;
    if (from === version) throw new PinEditError(`${prompt} is already pinned to ${version}`);
    node.set('live', version);
    if (from) {
      const history = node.get('history', true);
      if (isSeq(history)) {
        history.add(doc.createNode(from));
        while (history.items.length > HISTORY_MAX) history.items.shift();
      } else {
        const seq = doc.createNode([from]);
        if (isSeq(seq)) seq.flow = true;
        node.set('history', seq);
      }
    }
    dropExperiments(node, version, notes);
  } else {
    throw new PinEditError(`${prompt}'s pin is neither a version nor a map`);
  }
  return { from, to: version, text: render(doc), notes };
}

export function rollbackInText(text: string, prompt: string): PinChange {
  const doc = load(text);
  const notes: string[] = [];
  const node = doc.get(prompt, true) as Node | undefined;
  const noHistory = `no earlier version of ${prompt} is recorded in the pins file's history; pin one by hand (git log -p on the pins file shows earlier pins)`;
  if (node === undefined || node === null) throw new PinEditError(`${prompt} is not pinned`);
  if (!isMap(node)) throw new PinEditError(noHistory);
  const from = scalarString(node.get('live', true));
  if (!from) throw new PinEditError(`${prompt} has no live version`);
  const history = node.get('history', true);
  if (!isSeq(history) || history.items.length === 0) throw new PinEditError(noHistory);
  const to = scalarString(history.items.at(-1));
  if (!to) throw new PinEditError(`the last entry of ${prompt}'s history is not a version`);
  history.items.pop();
  node.set('live', to);
  dropExperiments(node, from, notes);
  return { from, to, text: render(doc), notes };
}
