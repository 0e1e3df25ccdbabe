// `npm run build`: the TypeScript compiled into dist/ (or the folder given),
// then the files served as they are (the console's script and stylesheet)
// copied beside the compiled code that reads them (server/console.ts reads
// ../console/static relative to itself, in src/ and in dist/ alike).
import { execFileSync } from 'node:child_process';
import { cpSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '..');
const outDir = path.resolve(root, process.argv[2] ?? 'dist');
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
execFileSync(process.execPath, [tsc, '-p', path.join(root, 'tsconfig.json'), '--outDir', outDir], { cwd: root, stdio: 'inherit' });
cpSync(path.join(root, 'src/console/static'), path.join(outDir, 'console/static'), { recursive: true });
