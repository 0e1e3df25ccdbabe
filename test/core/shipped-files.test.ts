// What ships beside the code: eval sets may be JSONL and must reach the
// repository, and a comment that sends a reader to a file names one that
// exists.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const git = (...args: string[]) => execFileSync('git', args, { cwd: ROOT, encoding: 'utf8' });

/** `git check-ignore` exits 1 for a path the ignore rules do not hide. */
function ignored(file: string): boolean {
  try {
    execFileSync('git', ['check-ignore', '-q', '--no-index', file], { cwd: ROOT });
    return true;
  } catch (err) {
    if ((err as { status?: number }).status === 1) return false;
    throw err;
  }
}

const FILE_NAME = /(?<![\w$<{/.-])((?:[\w.-]+\/)*[\w-]+\.(?:ya?ml|jsonl?|ts|mjs|md))(?![\w/])/g;

/** File names in a shipped file's comments: `#` lines of YAML and the Dockerfile, backticked paths in Markdown. */
function referencedFiles(file: string, text: string): string[] {
  if (file.endsWith('.md')) {
    const prose = text.replace(/^```[\s\S]*?^```/gm, '');
    return [...prose.matchAll(/`([^`\s]+\/[^`\s]+\.(?:ya?ml|jsonl?|ts|mjs|md|js))`/g)].map((m) => m[1]!).filter((p) => !p.startsWith('/') && !/[<>*{}$]/.test(p));
  }
  const names: string[] = [];
  for (const line of text.split('\n')) {
    const hash = line.search(/(^|\s)#/);
    if (hash < 0) continue;
    for (const m of line.slice(hash).matchAll(FILE_NAME)) names.push(m[1]!);
  }
  return names;
}

describe('shipped files', () => {
  it('gitignore – JSONL eval sets under config/ are not ignored; run-time JSONL records still are', () => {
    assert.equal(ignored('config/evals/triage/v9.jsonl'), false);
    assert.equal(ignored('config/evals/other/v1.jsonl'), false);
    assert.equal(ignored('audit-green-2026-01-01.0.jsonl'), true);
  });

  it('comments – every file a comment in config/, policies/, the README or the Dockerfile names exists', () => {
    const tracked = git('ls-files').split('\n').filter(Boolean);
    const shipped = tracked.filter((f) => /^(config|policies)\//.test(f) || f === 'README.md' || f === 'Dockerfile');
    const basenames = new Set(tracked.map((f) => path.basename(f)));
    const missing: string[] = [];
    let checked = 0;
    for (const file of shipped) {
      const text = readFileSync(path.join(ROOT, file), 'utf8');
      for (const name of referencedFiles(file, text)) {
        checked++;
        // A path resolves from the repository or from the file's own folder; a bare name is one the repository holds.
        const found = name.includes('/')
          ? [ROOT, path.join(ROOT, path.dirname(file)), path.join(ROOT, 'config')].some((base) => existsSync(path.join(base, name)))
          : basenames.has(name);
        if (!found) missing.push(`${file}: ${name}`);
      }
    }
    assert.ok(checked > 10, `comments were read (${checked} names)`);
    assert.deepEqual(missing, []);
  });
});
