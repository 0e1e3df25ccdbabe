// The request context is the type every stage imports. If the context
// imported a stage module back, every stage would sit in one import cycle
// with it, and module load order (and what is still undefined when a module
// body runs) would depend on which file happened to be loaded first.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const SRC = fileURLToPath(new URL('../../src/', import.meta.url));
const CONTEXT = path.join(SRC, 'pipeline', 'context.ts');

/**
 * The src modules a file imports: static, type-only, re-exports and dynamic
 * `import()`, since a type-only cycle is still a cycle for a reader and turns
 * into a runtime one as soon as someone imports a value across it.
 */
function importsOf(file: string): string[] {
  const info = ts.preProcessFile(readFileSync(file, 'utf8'), true, true);
  const out: string[] = [];
  for (const { fileName } of info.importedFiles) {
    if (!fileName.startsWith('.')) continue;
    const resolved = path.resolve(path.dirname(file), fileName.replace(/\.js$/, '.ts'));
    if (existsSync(resolved)) out.push(resolved);
  }
  return out;
}

/** Every module reachable from `start`, with the import path that reaches it first. */
function reachable(start: string): Map<string, string[]> {
  const paths = new Map<string, string[]>([[start, [start]]]);
  const queue = [start];
  for (let file = queue.shift(); file !== undefined; file = queue.shift()) {
    for (const next of importsOf(file)) {
      if (paths.has(next)) continue;
      paths.set(next, [...(paths.get(file) ?? []), next]);
      queue.push(next);
    }
  }
  return paths;
}

const rel = (file: string): string => path.relative(SRC, file);

test('pipeline/context.ts – imports no module that imports it back', () => {
  const fromContext = reachable(CONTEXT);
  const cycles: string[] = [];
  for (const [file, via] of fromContext) {
    if (file !== CONTEXT && importsOf(file).includes(CONTEXT)) cycles.push([...via, CONTEXT].map(rel).join(' -> '));
  }
  assert.deepEqual(cycles, [], `context.ts sits in an import cycle:\n${cycles.join('\n')}`);
});

test('import graph walker – sees the context imported by the pipeline', () => {
  // Guards the walker itself: if it resolved nothing, the test above would pass on any code.
  assert.ok(reachable(path.join(SRC, 'pipeline', 'index.ts')).has(CONTEXT));
});
